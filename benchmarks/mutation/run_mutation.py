"""Mutation testing of the modules whose bugs change mrbench's numbers (issue 18).

Tool: **mutmut 3** (``pip install -e ".[dev]"`` installs it). Why mutmut rather than
cosmic-ray or mutatest:

* it is actively maintained (3.x releases through 2025-2026) and needs no database, no
  config service and no distributed runner: one ``pip install`` and a ``[tool.mutmut]`` table;
* it runs each mutant only against the tests that actually call the mutated function (it
  records per-test coverage once, through trampolines), which is what makes a full pass
  feasible on two CPU cores: cosmic-ray re-runs the whole configured test command for every
  mutant;
* it forks workers from a warm process (a fork server for the torch group), so torch and
  numpy are imported once, not once per mutant;
* mutants are named by function (``mrbench.metrics.iou.x_temporal_iou__mutmut_3``), so the
  equivalent-mutant list beside this script can name them, and ``mutmut show NAME`` prints
  the diff.

Never run on the checkout you edit. The script copies the repository (``git archive HEAD``
by default, ``--working-tree`` for tracked plus untracked, not-ignored files) into
``--workdir/<group>`` and runs mutmut *there*: mutmut writes its ``mutants/`` tree and a
``[tool.mutmut]`` table into the copy only. The tests run with ``MRBENCH_SHARED`` pointing at
a path that does not exist, so every test that needs ``../shared`` skips: the kill rate is
that of the suite a user has without it.

Usage (from the repository root; slow, not run in CI)::

    python benchmarks/mutation/run_mutation.py                     # every group
    python benchmarks/mutation/run_mutation.py --groups metrics core --max-children 2
    python benchmarks/mutation/run_mutation.py --report-only       # re-read the last results

The script prints, per module, killed / total and the kill rate over non-equivalent
mutants, then lists every survivor that ``equivalent.md`` does not explain. Exit status 1
when a module is under ``--threshold`` (default 95 %).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EQUIVALENT_FILE = HERE / "equivalent.md"

# Lines never mutated: log and error *messages* (their wording is not a number; their
# conditions are on other lines and are mutated) and progress-bar plumbing.
DO_NOT_MUTATE_PATTERNS = [
    r"^\s*raise \w+(Error|Exception)\(",
    r"warnings\.warn\(",
    r"logger?\.(debug|info|warning)\(",
    r"desc=",
]


@dataclass(frozen=True)
class Group:
    """One mutation run: the files mutated, the functions kept, and the tests run."""

    name: str
    source_paths: tuple[str, ...]
    only_mutate: tuple[str, ...]
    tests: tuple[str, ...]
    # fnmatch patterns on mutant names; empty = every mutant of the files
    functions: tuple[str, ...] = ()
    forkserver: bool = False
    extra_args: tuple[str, ...] = field(default_factory=tuple)
    # fnmatch patterns on mutant names left to another group (not counted here)
    exclude: tuple[str, ...] = ()


GROUPS: dict[str, Group] = {
    g.name: g
    for g in [
        Group(
            "metrics",
            ("mrbench",),
            ("mrbench/metrics/*",),
            ("tests/test_metrics.py", "tests/test_metrics_properties.py", "tests/test_scoring.py",
             "tests/test_scoring_inputs.py", "tests/test_hand_metrics.py", "tests/test_hand_scoring.py"),
        ),
        Group(
            "scoring",
            ("mrbench",),
            ("mrbench/scoring/*",),
            ("tests/test_scoring.py", "tests/test_scoring_inputs.py", "tests/test_score_cli.py",
             "tests/test_metrics_properties.py", "tests/test_hand_scoring.py", "tests/test_hand_metrics.py"),
            # flatten_report (a report as one leaderboard row) is counted in the leaderboard group
            exclude=("mrbench.scoring.report.x_flatten_report__mutmut_*",),
        ),
        Group(
            "masking",
            ("mrbench",),
            ("mrbench/masking/ranges.py", "mrbench/masking/strategies.py", "mrbench/masking/build.py"),
            ("tests/test_masking.py", "tests/test_masking_ranges.py", "tests/test_mask_cli.py",
             "tests/test_hand_masking.py"),
            functions=("mrbench.masking.ranges.*", "mrbench.masking.strategies.*",
                       "mrbench.masking.build.x_relabel__mutmut_*",
                       "mrbench.masking.build.x_plan_queries__mutmut_*"),
        ),
        Group(
            "data",
            ("mrbench",),
            ("mrbench/data/schema.py", "mrbench/data/synth.py"),
            ("tests/test_schema.py", "tests/test_synth.py", "tests/test_synth_probes.py",
             "tests/test_hand_data.py"),
            # the schema, and the synth *renderer*: the world's vectors, the per-clip features
            # and the text features (the planner's cue placement is covered by test_synth_probes)
            functions=("mrbench.data.schema.*",
                       *(f"mrbench.data.synth.x_{name}__mutmut_*" for name in (
                           "render", "_segments", "text_features", "build_world", "_unit", "_bump",
                           "_scores", "_num")),
                       "mrbench.data.synth.xǁWorldǁword__mutmut_*"),
        ),
        Group(
            "leaderboard",
            ("mrbench",),
            # aggregate and make_row live in leaderboard/table.py since the leaderboard package
            # split; flatten_report in scoring/report.py
            ("mrbench/leaderboard/table.py", "mrbench/scoring/report.py"),
            ("tests/test_leaderboard.py", "tests/test_hand_leaderboard.py"),
            functions=("mrbench.leaderboard.table.x_aggregate__mutmut_*",
                       "mrbench.leaderboard.table.x_make_row__mutmut_*",
                       "mrbench.scoring.report.x_flatten_report__mutmut_*"),
        ),
        Group(
            "core",
            ("reference_models", "mrbench"),
            ("reference_models/core/matcher.py", "reference_models/core/losses.py",
             "reference_models/core/vsdc.py", "reference_models/core/tdem.py",
             "reference_models/core/postprocess.py"),
            ("tests/models/test_core.py", "tests/models/test_vsdc.py", "tests/models/test_tdem.py",
             "tests/models/test_tddetr.py", "tests/models/test_release_presets.py", "tests/models/test_hand_core.py"),
            # the whole of vsdc.py: the module-level functions (similarity, partners, layouts,
            # ground-truth blocks, TEF) and the VSDC class's batch assembly
            functions=("reference_models.core.matcher.*", "reference_models.core.losses.*",
                       "reference_models.core.tdem.*", "reference_models.core.postprocess.*",
                       "reference_models.core.vsdc.*"),
            forkserver=True,
        ),
    ]
}

# A pytest plugin written into the copy: Hypothesis without shrinking, without its example
# database and without deadlines. A mutant that breaks a property fails on the first
# counterexample; shrinking it (seconds to minutes per mutant) tells mutation testing nothing,
# and a deadline on a loaded machine fails clean runs.
PLUGIN_NAME = "_mrbench_mutation_plugin"
PLUGIN = '''"""Hypothesis settings for mutation runs (written by benchmarks/mutation/run_mutation.py)."""
try:
    from hypothesis import Phase, settings
except ImportError:  # pragma: no cover
    pass
else:
    settings.register_profile("mrbench-mutation", phases=(Phase.explicit, Phase.reuse, Phase.generate),
                              database=None, deadline=None)
    settings.load_profile("mrbench-mutation")
'''
# Tests of several seconds each, deselected so that a pass fits on two cores: two property
# tests that re-check invariances (query order, an 11th prediction) the hand tests pin
# directly, and two tiny training runs (their only checks: the loss falls, the CLI runs). A
# mutant only they would kill counts as a survivor, so the kill rate is a lower bound.
DESELECTED = (
    "tests/test_metrics_properties.py::test_an_eleventh_prediction_changes_nothing",
    "tests/test_metrics_properties.py::test_permuting_queries_changes_nothing",
    "tests/models/test_tddetr.py::test_tiny_trains_with_vsdc_and_loss_falls",
    "tests/models/test_tddetr.py::test_tiny_run_end_to_end_through_the_cli",
)

PLACEHOLDER = '"""Placeholder: the hand tests of issue 18 are not part of this run."""\n'

KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def copy_repository(repo: Path, dest: Path, working_tree: bool) -> None:
    """Copy ``repo`` into ``dest``: the committed HEAD, or tracked + untracked non-ignored
    files of the working tree. Nothing in ``repo`` is written."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if working_tree:
        names = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True, capture_output=True,
        ).stdout.split(b"\0")
        for raw in names:
            if not raw:
                continue
            rel = raw.decode()
            src = repo / rel
            if src.is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
        return
    archive = dest / "_head.tar"
    subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", "-o", str(archive), "HEAD"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()


def toml_list(values: list[str] | tuple[str, ...]) -> str:
    """A TOML array of strings."""
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def write_config(copy: Path, group: Group) -> None:
    """Append the group's ``[tool.mutmut]`` table to the copy's pyproject.toml.

    The test selection is the group's fixed list (a missing file becomes an empty placeholder),
    so that the same copy can be re-run with more tests (``--rerun-survivors``) without mutmut
    treating it as a new configuration and discarding its results."""
    write_placeholders(copy, group)
    (copy / f"{PLUGIN_NAME}.py").write_text(PLUGIN, encoding="utf-8")
    deselect = [arg for test in DESELECTED if test.split("::")[0] in group.tests for arg in ("--deselect", test)]
    pytest_args = ["-p", "no:cacheprovider", "-p", PLUGIN_NAME, "-q", "--hypothesis-seed=0", *deselect,
                   *group.extra_args]
    lines = [
        "",
        "[tool.mutmut]",
        f"source_paths = {toml_list(group.source_paths)}",
        f"only_mutate = {toml_list(group.only_mutate)}",
        f"do_not_mutate_patterns = {toml_list(DO_NOT_MUTATE_PATTERNS)}",
        f"pytest_add_cli_args_test_selection = {toml_list(group.tests)}",
        f"pytest_add_cli_args = {toml_list(pytest_args)}",
        f"also_copy = {toml_list([f'{PLUGIN_NAME}.py'])}",
        "use_git_change_detection = false",
        f"process_isolation = {json.dumps('forkserver' if group.forkserver else 'fork')}",
    ]
    with open(copy / "pyproject.toml", "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def hide_hand_tests(copy: Path) -> None:
    """Replace every ``tests/**/test_hand_*.py`` of the copy by an empty placeholder: the suite
    as it was before issue 18 (the "before" kill rate)."""
    for path in copy.glob("tests/**/test_hand_*.py"):
        path.write_text(PLACEHOLDER, encoding="utf-8")


COPY_ARTEFACTS = ("mutants", "mutmut.log", f"{PLUGIN_NAME}.py", "mutmut-stats.json")


def refresh_copy(repo: Path, copy: Path, group: Group, working_tree: bool) -> None:
    """Bring the copy's files up to the repository's (HEAD, or the working tree).

    Only files whose content differs are rewritten, with a new modification time: mutmut then
    re-generates the mutants of a changed source file and keeps the verdicts of every function
    whose code hash is unchanged (changed functions become "not checked"). The copy's
    ``[tool.mutmut]`` table is kept (re-appended when the repository's pyproject changed)."""
    fresh = copy.parent / (copy.name + ".fresh")
    copy_repository(repo, fresh, working_tree)
    try:
        for src in sorted(fresh.rglob("*")):
            rel = src.relative_to(fresh)
            if src.is_dir():
                continue
            dest = copy / rel
            new = src.read_bytes()
            if rel == Path("pyproject.toml"):
                if not dest.read_bytes().startswith(new):
                    dest.write_bytes(new)
                    write_config(copy, group)
                continue
            if dest.is_file() and dest.read_bytes() == new:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)  # not copy2: the new mtime tells mutmut the file changed
        for root in ("mrbench", "reference_models", "tests"):
            for old in sorted((copy / root).rglob("*.py")):
                rel = old.relative_to(copy)
                if not (fresh / rel).exists() and not str(rel).startswith(COPY_ARTEFACTS):
                    old.unlink()
                    (copy / "mutants" / rel).unlink(missing_ok=True)
    finally:
        shutil.rmtree(fresh)


def check_import_target(copy: Path, python: str, env: dict[str, str]) -> None:
    """Refuse to run if ``mrbench`` would be imported from anywhere but the copy."""
    out = subprocess.run([python, "-c", "import mrbench, reference_models; "
                          "print(mrbench.__file__); print(reference_models.__file__)"],
                         cwd=copy, env=env, check=True, capture_output=True, text=True).stdout.split()
    for path in out:
        if not Path(path).resolve().is_relative_to(copy.resolve()):
            sys.exit(f"mrbench would be imported from {path}, not from the copy {copy}")


def run_group(group: Group, args: argparse.Namespace, env: dict[str, str]) -> None:
    """Copy, configure and run mutmut for one group (results stay in the copy).

    With ``--rerun-survivors`` the existing copy is refreshed from the repository (sources and
    tests; mutmut keeps the verdicts of unchanged functions), and only the mutants that are not
    killed (survivors, and those not checked yet or whose function changed) and not listed as
    equivalent are run."""
    from fnmatch import fnmatch

    copy = args.workdir / group.name
    names = list(group.functions)
    if args.rerun_survivors:
        if not (copy / "mutants").exists():
            sys.exit(f"--rerun-survivors: no earlier run in {copy}")
        refresh_copy(args.repo, copy, group, args.working_tree)
        # which tests call which function is re-recorded from scratch: mutmut only traces new
        # tests, so an old test that now reaches a new or moved function would not be mapped
        (copy / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        write_placeholders(copy, group)
        (copy / f"{PLUGIN_NAME}.py").write_text(PLUGIN, encoding="utf-8")
        check_import_target(copy, args.python, env)
        # a run filtered on a name that matches nothing: mutmut re-generates the mutants of
        # changed files and collects coverage for new tests, then stops before running any
        generate = [args.python, "-m", "mutmut", "run", "--max-children", "1", "no.such.mutant__mutmut_0"]
        with open(copy / "mutmut.log", "a") as fh:
            subprocess.run(["nice", "-n", str(args.nice), *generate] if args.nice else generate,
                           cwd=copy, env=env, stdout=fh, stderr=subprocess.STDOUT)
        equivalent = read_equivalent(EQUIVALENT_FILE)
        # a listed equivalent that is not checked (its function changed, or it is new under an
        # old number) runs too: if a test kills it, its equivalent.md line is stale (report says)
        names = [name for name, status in read_results(copy, group).items()
                 if status not in KILLED and (name not in equivalent or status == "not checked")
                 and not (args.survivors_only and status == "not checked")
                 and (not args.only or any(fnmatch(name, pat) for pat in args.only))]
        if not names:
            print(f"== {group.name}: no survivors to re-run")
            return
    else:
        copy_repository(args.repo, copy, args.working_tree)
        if args.without_hand_tests:
            hide_hand_tests(copy)
        write_config(copy, group)
    check_import_target(copy, args.python, env)
    cmd = [args.python, "-m", "mutmut", "run", "--max-children", str(args.max_children), *names]
    if args.nice:
        cmd = ["nice", "-n", str(args.nice), *cmd]
    print(f"== {group.name}: mutmut run ({len(names)} name patterns) in {copy}", flush=True)
    with open(copy / "mutmut.log", "a") as fh:
        subprocess.run(cmd, cwd=copy, env=env, stdout=fh, stderr=subprocess.STDOUT)


# Run by ``quick_check`` inside the copy's mutants/: imports the packages and pytest once, then
# forks one child per mutant (fresh state each time, no import cost) with MUTANT_UNDER_TEST set.
QUICK_DRIVER = r'''
import json, os, signal, sys
import pytest
import numpy  # noqa: F401  (warm imports shared by the forked children)
try:
    import torch  # noqa: F401
except ImportError:
    pass
import mrbench  # noqa: F401

names, tests, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
tests = [*tests, *json.loads(sys.argv[4])]  # extra pytest arguments (-k EXPR)
# collect once here: conftest, the test modules and what they import stay warm in the children
pytest.main(["-q", "--co", "-p", "no:cacheprovider", *tests])


class Failed:
    def __init__(self):
        self.ids = []

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.ids.append(report.nodeid)

    def pytest_collection_modifyitems(self, items):
        items.reverse()  # the newest tests (at the end of a file) first: most survivors die there


def run(name, extra):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.environ["MUTANT_UNDER_TEST"] = name
        signal.alarm(300)  # a mutant that loops forever is left unrecorded, not waited for
        failed = Failed()
        code = pytest.main(["-q", "-p", "no:cacheprovider", *extra, *tests], plugins=[failed])
        os.write(write, json.dumps([int(code), failed.ids]).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data or b"[-1, []]")


code, broken = run("", [])
deselect = [arg for node in broken for arg in ("--deselect", node)]
results = {"": [code, broken]}
for name in names:
    results[name] = run(name, ["-x", *deselect])
    with open(out, "w") as fh:
        json.dump(results, fh)
with open(out, "w") as fh:
    json.dump(results, fh)
'''


def quick_check(group: Group, args: argparse.Namespace, env: dict[str, str]) -> None:
    """Re-check the survivors of the last run against ``--quick-check`` test files only.

    Each named test file is copied from the working tree into the copy; the tests that fail on
    the unmutated copy are deselected; then each survivor (not listed as equivalent) runs the
    files with ``MUTANT_UNDER_TEST`` set (one forked child per mutant), and a survivor that now
    fails a test is recorded as killed in mutmut's results. Much faster than a mutmut run (no
    coverage pass, only these files), at the price of checking only the survivors."""
    from fnmatch import fnmatch

    copy = args.workdir / group.name
    mutants = copy / "mutants"
    if not mutants.exists():
        sys.exit(f"--quick-check: no earlier run in {copy}")
    for test in args.quick_check:
        for root in (copy, mutants):
            (root / test).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(args.repo / test, root / test)
    equivalent = read_equivalent(EQUIVALENT_FILE)
    survivors = sorted(name for name, status in read_results(copy, group).items()
                       if status not in KILLED and name not in equivalent
                       and (status != "not checked" or args.quick_unchecked)
                       and (not args.only or any(fnmatch(name, pat) for pat in args.only)))
    out = copy / "quick_check.json"
    nice = ["nice", "-n", str(args.nice)] if args.nice else []
    print(f"== {group.name}: {len(survivors)} survivors against {', '.join(args.quick_check)}", flush=True)
    extra = ["-k", args.quick_k] if args.quick_k else []
    subprocess.run([*nice, args.python, "-c", QUICK_DRIVER, json.dumps(survivors), json.dumps(args.quick_check),
                    str(out), json.dumps(extra)], cwd=mutants, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    results = json.loads(out.read_text()) if out.exists() else {}
    clean_code, broken = results.pop("", [-1, []])
    print(f"   unmutated: exit {clean_code}; {len(broken)} failing tests left out: {broken}")
    killed = [name for name, (code, _) in results.items() if code == 1]
    for name in survivors:
        state = "killed  " if name in killed else "survived" if name in results else "not run "
        print(f"  {state} {name}")
    # with --quick-unchecked, a mutant never checked before that these tests do not kill is
    # recorded as a survivor (exit code 0): a lower bound, the group's other tests may kill it
    survived = {name for name, (code, _) in results.items() if code == 0} if args.quick_unchecked else set()
    for meta in mutants.rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        hits = [name for name in killed if name in codes]
        kept = [name for name in survived if name in codes and codes[name] is None]
        if hits or kept:
            for name in hits:
                codes[name] = 1
            for name in kept:
                codes[name] = 0
            meta.write_text(json.dumps(data))
    print(f"== {group.name}: {len(killed)} of {len(survivors)} survivors killed")


def write_placeholders(copy: Path, group: Group) -> None:
    """Empty placeholders for the group's test files that the copy lacks."""
    for test in group.tests:
        path = copy / test
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(PLACEHOLDER, encoding="utf-8")


def read_results(copy: Path, group: Group) -> dict[str, str]:
    """mutant name -> status, from the ``.meta`` files mutmut wrote in the copy."""
    from fnmatch import fnmatch

    from mutmut.stats import status_by_exit_code

    results: dict[str, str] = {}
    for meta in (copy / "mutants").rglob("*.py.meta"):
        for _ in range(5):  # mutmut may be rewriting the file right now
            try:
                data = json.loads(meta.read_text())
                break
            except json.JSONDecodeError:
                time.sleep(0.2)
        else:
            continue
        for name, code in data.get("exit_code_by_key", {}).items():
            if group.functions and not any(fnmatch(name, pat) for pat in group.functions):
                continue
            if any(fnmatch(name, pat) for pat in group.exclude):
                continue
            results[name] = status_by_exit_code[code]
    return results


def read_equivalent(path: Path) -> dict[str, str]:
    """``mutant name -> reason`` from the markdown list beside the script
    (lines ``- `NAME`: reason``)."""
    table: dict[str, str] = {}
    if not path.exists():
        return table
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*[-*]\s+`([^`]+)`\s*[:\u2014-]\s*(.+)$", line)
        if match:
            table[match.group(1)] = match.group(2).strip()
    return table


def module_of(mutant: str) -> str:
    """``mrbench.metrics.iou.x_f__mutmut_3`` -> ``mrbench.metrics.iou``."""
    head = mutant.split("__mutmut_")[0]
    parts = head.split(".")
    while parts and (parts[-1].startswith("x_") or parts[-1].startswith("x\u01c1")
                     or parts[-1][:1].isupper()):
        parts.pop()
    return ".".join(parts)


@functools.lru_cache(maxsize=16)
def _functions_of(path: Path) -> dict[str, str]:
    """Every function's source in a mutated module, by name (parsed once per file: a mutated
    module holds thousands of functions)."""
    import ast

    try:
        source = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    lines = source.splitlines()
    return {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno]) for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def show(copy: Path, name: str) -> str:
    """The lines a mutant changes (what ``mutmut show`` prints), read from the mutated module
    in the copy: the mutant's function against the ``__mutmut_orig`` one."""
    import difflib

    module, function = name.rsplit(".", 1)
    if "\u01c1" in module:  # a method: mrbench.x.xǁClassǁmethod__mutmut_3
        module = module.split(".x\u01c1")[0]
        function = name[len(module) + 1:]
    path = copy / "mutants" / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = copy / "mutants" / module.replace(".", "/") / "__init__.py"
    found = _functions_of(path)
    original = found.get(function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig", "").splitlines()
    mutated = found.get(function, "").splitlines()
    original = [line.replace("__mutmut_orig", "") for line in original]
    mutated = [line.replace(function.rsplit("__mutmut_", 1)[1].join(["__mutmut_", ""]), "") for line in mutated]
    return "\n".join(line for line in difflib.unified_diff(original, mutated, lineterm="", n=0)
                     if line[:1] in "+-" and not line.startswith(("---", "+++")))


def report(groups: list[Group], args: argparse.Namespace, env: dict[str, str]) -> int:
    """Print the kill rate per module and the unexplained survivors; 1 if under threshold.

    Mutants not checked yet (an interrupted run) are counted apart and left out of the rate."""
    del env
    equivalent = read_equivalent(EQUIVALENT_FILE)
    failing = False
    print(f"\n{'module':44s} {'killed':>7s} {'equiv':>6s} {'surv':>5s} {'total':>6s} {'rate':>7s} {'unchecked':>9s}")
    survivors: list[tuple[Group, str, str]] = []
    stale: list[str] = []
    for group in groups:
        copy = args.workdir / group.name
        if not (copy / "mutants").exists():
            print(f"{group.name}: no results in {copy}")
            failing = True
            continue
        by_module: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for name, status in sorted(read_results(copy, group).items()):
            counts = by_module[module_of(name)]
            if status == "not checked":
                counts["unchecked"] += 1
                continue
            counts["total"] += 1
            if status in KILLED:
                counts["killed"] += 1
                if name in equivalent:
                    stale.append(name)
            elif name in equivalent:
                counts["equivalent"] += 1
            else:
                counts["survived"] += 1
                survivors.append((group, name, status))
        for module, counts in sorted(by_module.items()):
            live = counts["total"] - counts["equivalent"]
            rate = counts["killed"] / live if live else 1.0
            failing |= rate < args.threshold or counts["unchecked"] > 0
            print(f"{module:44s} {counts['killed']:7d} {counts['equivalent']:6d} "
                  f"{counts['survived']:5d} {counts['total']:6d} {100 * rate:6.1f}% {counts['unchecked']:9d}")
    if stale:
        failing = True
        print(f"\n{len(stale)} mutants listed in {EQUIVALENT_FILE.name} were killed (stale lines: "
              "re-check them with check_equivalent.py):")
        for name in stale:
            print(f"  {name}")
    if survivors:
        print(f"\n{len(survivors)} survivors not listed in {EQUIVALENT_FILE.name}:")
        for group, name, status in survivors:
            print(f"  {name} [{status}]")
            if args.diffs:
                for line in show(args.workdir / group.name, name).splitlines():
                    print(f"      {line}")
    return 1 if failing else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", nargs="+", choices=sorted(GROUPS), default=sorted(GROUPS))
    parser.add_argument("--repo", type=Path, default=REPO, help="repository to copy (not written)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mrbench-mutation"),
                        help="where the copies and mutmut's results live")
    parser.add_argument("--working-tree", action="store_true",
                        help="copy the working tree (tracked + untracked) instead of HEAD")
    parser.add_argument("--python", default=sys.executable, help="interpreter with mutmut")
    parser.add_argument("--max-children", type=int, default=1,
                        help="parallel mutants (one: the machine is shared)")
    parser.add_argument("--nice", type=int, default=15, help="niceness (0: none)")
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--report-only", action="store_true", help="only re-read the results")
    parser.add_argument("--without-hand-tests", action="store_true",
                        help="empty the tests/**/test_hand_*.py files in the copy (the 'before' suite)")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="refresh the last copy from the repository (unchanged functions keep their "
                             "verdicts), then run every mutant not killed and not listed as equivalent")
    parser.add_argument("--survivors-only", action="store_true",
                        help="with --rerun-survivors: leave the mutants not checked yet for a later run")
    parser.add_argument("--quick-check", nargs="+", metavar="TEST_FILE",
                        help="re-check the last run's survivors against these test files only "
                             "(copied from the working tree); kills are recorded")
    parser.add_argument("--only", "--quick-only", nargs="+", metavar="PATTERN", dest="only",
                        help="with --quick-check or --rerun-survivors: only the mutants whose names "
                             "match one of these fnmatch patterns")
    parser.add_argument("--quick-unchecked", action="store_true",
                        help="with --quick-check: also run the mutants never checked (an interrupted "
                             "pass); those these tests do not kill are recorded as survivors")
    parser.add_argument("--quick-k", metavar="EXPR", help="with --quick-check: only the tests pytest -k selects")
    parser.add_argument("--diffs", action="store_true", help="print each survivor's diff")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    if args.workdir.is_relative_to(args.repo.resolve()):
        parser.error("--workdir must be outside the repository")

    env = dict(os.environ)
    env["MRBENCH_SHARED"] = "/nonexistent/mrbench-shared"
    env.pop("MRBENCH_REQUIRE_SHARED", None)
    env.pop("PYTHONPATH", None)
    groups = [GROUPS[name] for name in args.groups]
    if args.quick_check:
        for group in groups:
            quick_check(group, args, env)
    elif not args.report_only:
        for group in groups:
            run_group(group, args, env)
    return report(groups, args, env)


if __name__ == "__main__":
    raise SystemExit(main())
