"""Check that every mutant listed in equivalent.md still is the mutant its line describes.

mutmut numbers mutants per function, so editing a function renumbers its mutants and an
equivalent.md line can end up naming another mutant (or none). This script generates, without
running any test, the mutants of the files of ``git archive HEAD`` (in ``--workdir``, outside the
repository), and prints each listed name with its reason and its diff; ``!!! NOT FOUND`` marks a
name that no longer exists. Read the output and fix the lines whose diff does not match.

    python benchmarks/mutation/check_equivalent.py --group scoring --prefix mrbench.scoring.core
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run_mutation as rm  # noqa: E402


def function_source(text: str, name: str) -> str | None:
    """The source of ``def name(...)`` in a mutated module (up to the next top-level item)."""
    match = re.search(r"^([ \t]*)def " + re.escape(name) + r"\(", text, re.M)
    if not match:
        return None
    rest = text[match.end():]
    # the next item at the same indentation (a closing ")" of a wrapped signature is not one)
    end = re.search(r"^" + match.group(1) + r"(?:def |class |@|[A-Za-z_])", rest, re.M)
    return text[match.start(): match.end() + (end.start() if end else len(rest))]


def diff_of(copy: Path, name: str, cache: dict[Path, str]) -> list[str] | None:
    """The changed lines of mutant ``name`` against its function's original."""
    module, function = name.rsplit(".", 1)
    if "\u01c1" in module:  # a method: mrbench.x.xǁClassǁmethod__mutmut_3
        module = module.split(".x\u01c1")[0]
        function = name[len(module) + 1:]
    path = copy / "mutants" / (module.replace(".", "/") + ".py")
    if path not in cache:
        cache[path] = path.read_text(encoding="utf-8") if path.exists() else ""
    base, number = function.rsplit("__mutmut_", 1)
    original = function_source(cache[path], base + "__mutmut_orig")
    mutated = function_source(cache[path], function)
    if original is None or mutated is None:
        return None
    old = original.rstrip().replace("__mutmut_orig", "").splitlines()
    new = mutated.rstrip().replace(f"__mutmut_{number}", "").splitlines()
    return [line for line in difflib.unified_diff(old, new, lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("---", "+++"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", required=True, choices=sorted(rm.GROUPS))
    parser.add_argument("--prefix", default="", help="only the listed names starting with this")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mrbench-mutation-gen"))
    args = parser.parse_args()
    group = rm.GROUPS[args.group]
    copy = (args.workdir / group.name).resolve()
    if copy.is_relative_to(rm.REPO):
        parser.error("--workdir must be outside the repository")
    rm.copy_repository(rm.REPO, copy, working_tree=False)
    rm.write_config(copy, group)
    os.chdir(copy)
    from mutmut.__main__ import create_mutants_for_file  # needs the copy's [tool.mutmut]

    for pattern in group.only_mutate:
        for source in sorted(Path().glob(pattern)):
            if source.suffix == ".py":
                out = Path("mutants") / source
                out.parent.mkdir(parents=True, exist_ok=True)
                create_mutants_for_file(source, out)
    cache: dict[Path, str] = {}
    for name, reason in rm.read_equivalent(rm.EQUIVALENT_FILE).items():
        modules = [p.removesuffix(".py").replace("/", ".").split("*")[0].rstrip(".") for p in group.only_mutate]
        if not name.startswith(args.prefix) or not any(name.startswith(m + ".") for m in modules):
            continue
        lines = diff_of(copy, name, cache)
        print(f"## {name}: {reason}")
        print("   " + ("\n   ".join(lines) if lines is not None else "!!! NOT FOUND"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
