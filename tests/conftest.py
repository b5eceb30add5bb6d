"""Shared fixtures: the real annotation files in ../shared (skipped, or failed when
MRBENCH_REQUIRE_SHARED=1, if absent) and small feature trees written by the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MRBENCH_SHARED", REPO.parent / "shared"))


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
