"""Shared fixtures: the real annotation files in ../shared (skipped, or failed when
MRBENCH_REQUIRE_SHARED=1, if absent) and small feature trees written by the tests."""

from __future__ import annotations

import hashlib
import io
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MRBENCH_SHARED", REPO.parent / "shared"))

# Hypothesis: CI (MRBENCH_HYPOTHESIS_PROFILE=ci, set by .ci/run) runs a fixed, derandomized
# profile, so a red run is reproduced by running it again; local runs keep exploring.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("MRBENCH_HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["MRBENCH_HYPOTHESIS_PROFILE"])


def require_shared(*parts: str) -> Path:
    """Path under ../shared; skip the test with a reason when absent, or fail when
    MRBENCH_REQUIRE_SHARED=1 (as in CI)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is absent (the real annotation files live in ../shared)"
        if os.environ.get("MRBENCH_REQUIRE_SHARED") == "1":
            pytest.fail(message + " and MRBENCH_REQUIRE_SHARED=1")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (the real annotation files)."""
    return require_shared("data")


@pytest.fixture
def shared_dir() -> Path:
    """../shared itself (golden cases, real predictions)."""
    return require_shared()


def run_cli(argv: list[str]) -> int:
    """Run the ``mrbench`` entry point in-process and return its exit code (0 on success)."""
    from mrbench.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return 0 if exc.code is None else int(exc.code)
    return 0


@dataclass
class Outcome:
    """What a user saw: the exit status and the text on stderr."""

    code: int
    err: str


def run_guarded(argv: list[str]) -> Outcome:
    """Run ``mrbench`` in-process and check the contract every command keeps with any input:
    exit 0 or 2, and on 2 exactly one ``error:`` line (a traceback would escape as the exception
    itself and fail the test)."""
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        code = run_cli([str(a) for a in argv])
    text = err.getvalue()
    assert code in (0, 2), f"exit {code}: {text}"
    assert "Traceback" not in text, text
    if code == 2:
        errors = [line for line in text.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, f"expected one error line, got: {text!r}"
    return Outcome(code, text)


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` -> its content digest (files), link target (links) or 'dir'."""
    state = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            state[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def changes(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """Entries added, removed or changed between two snapshots."""
    return {rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel)}


def assert_confined(before: dict[str, str], after: dict[str, str], *allowed: str) -> None:
    """Nothing changed outside the ``allowed`` relative folders or files (or their lock files)."""
    stray = [rel for rel in changes(before, after)
             if not any(rel == a or rel.startswith(a.rstrip("/") + "/") for a in allowed)]
    assert not stray, f"written outside the output: {sorted(stray)[:10]}"
