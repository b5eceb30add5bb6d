"""The data, synthesis, masking, scoring and leaderboard commands work where torch cannot be
imported (``pip install mrbench`` without the ``models`` extra)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, require_shared


@pytest.fixture(scope="module")
def no_torch_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose ``import torch`` fails, as on a machine without torch."""
    blocker = tmp_path_factory.mktemp("no_torch")
    (blocker / "torch").mkdir()
    (blocker / "torch" / "__init__.py").write_text("raise ImportError('torch is not installed (test)')\n")
    path = os.pathsep.join([str(blocker), str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path}


def mrbench(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mrbench", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, check=False)


def test_the_pipeline_without_torch(no_torch_env: dict[str, str], tmp_path: Path) -> None:
    golden = require_shared("golden")
    qvh = require_shared("data", "qvhighlights")
    assert subprocess.run([sys.executable, "-c", "import torch"], env=no_torch_env, check=False,
                          capture_output=True).returncode != 0
    steps = [
        ("--help",),
        ("data", "info", "qvhighlights", "--root", str(qvh)),
        ("synth", "--out", "ds", "--n-train", "12", "--n-val", "6", "--n-ood", "4", "--dims", "8,8,8",
         "--concepts", "3", "--quiet"),
        ("mask", "--data", "ds", "--split", "val", "--out", "masked", "--quiet"),
        ("mask", "verify", "masked"),
        ("submission", "baselines", "--data", "ds", "--dataset", "toy", "--split", "val", "--masked", "masked",
         "--submissions", "subs", "--seeds", "0"),
        ("leaderboard", "build", "--submissions", "subs", "--out", "boards"),
        ("score", str(golden / "qvh_val_preds.jsonl"), "--gt", str(qvh / "highlight_val_release.jsonl")),
    ]
    for step in steps:
        done = mrbench(no_torch_env, *step, cwd=tmp_path)
        assert done.returncode == 0, f"mrbench {' '.join(step)}:\n{done.stderr}"
    assert (tmp_path / "boards" / "toy" / "val" / "leaderboard.md").is_file()
    # the model commands say what is missing instead of failing with a traceback
    done = mrbench(no_torch_env, "train-reference", "qd_detr", "--data", "ds", "--out", "run", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr and "torch" in done.stderr
