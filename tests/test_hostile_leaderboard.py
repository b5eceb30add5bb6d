"""Hostile submissions to ``mrbench submission check``, ``mrbench leaderboard build`` and
``mrbench submission baselines``: refused in one line before anything is written, or rendered as
inert text; the build writes and deletes only its own outputs (docs/security.md)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrbench.io import folder_lock, lock_path
from tests.conftest import assert_confined, run_guarded, snapshot

N_QUERIES = 8
GT = [
    {"qid": q, "query": f"q{q}", "duration": 40, "vid": f"v{q}", "relevant_windows": [[2 * q, 2 * q + 6]]}
    for q in range(N_QUERIES)
]
PREDS = [{"qid": q, "pred_relevant_windows": [[2 * q, 2 * q + 6, 0.9]]} for q in range(N_QUERIES)]
META = {
    "name": "Entry", "model": "m", "kind": "model", "paper": "https://arxiv.org/abs/2501.07305",
    "features": ["clip"], "dataset": "d", "split": "val", "seeds": [0], "masked_predictions": None,
    "date": "2024-01-01", "submitted_by": "someone", "test_answers_used": False, "self_scored": False,
}


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _write_meta(root: Path, **changes: object) -> None:
    meta = {**META, **changes}
    (root / "subs" / "e1" / "submission.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``subs/`` (one dataset ``d``, one entry ``e1``) in the current directory, plus a file
    ``victim.txt`` beside it that nothing may touch."""
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "subs" / "_datasets" / "d"
    (store / "annotations").mkdir(parents=True)
    (store / "annotations" / "val.jsonl").write_text(_jsonl(GT))
    (store / "source.yaml").write_text("title: T\ncolumns: qvhighlights\nclip_len: 2.0\n")
    (tmp_path / "subs" / "e1").mkdir()
    (tmp_path / "subs" / "e1" / "preds_seed0.jsonl").write_text(_jsonl(PREDS))
    _write_meta(tmp_path)
    (tmp_path / "victim.txt").write_text("keep me\n")
    return tmp_path


def _meta(**changes: object) -> Callable[[Path], None]:
    return lambda root: _write_meta(root, **changes)


def _yaml_text(text: str) -> Callable[[Path], None]:
    return lambda root: (root / "subs" / "e1" / "submission.yaml").write_text(text)


def _link(name: str, target: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / name
        if path.exists():
            path.unlink()
        os.symlink(target if target.startswith("/") else root / target, path)
    return setup


def _bomb_yaml() -> str:
    """A billion-laughs document: ``name`` aliases 9**9 strings (a naive repr never ends)."""
    levels = ['&a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    body = yaml.safe_dump({k: v for k, v in META.items() if k != "name"}, sort_keys=False)
    return "notes: [" + ", ".join(levels) + "]\nname: *a8\n" + body


# (case, setup, words expected in the error line)
REFUSED = [
    ("dataset escapes", _meta(dataset="../../victim"), "dataset"),
    ("dataset absolute", _meta(dataset="/tmp"), "dataset"),
    ("dataset is ..", _meta(dataset=".."), "dataset"),
    ("split escapes", _meta(split="../../../victim"), "split"),
    ("split with NUL", _meta(split="val\x00x"), "split"),
    ("split with newline", _meta(split="val\nx"), "split"),
    ("masked variant escapes", _meta(masked_predictions="m{seed}.jsonl", masked_variant="../../.."), "masked_variant"),
    ("prediction pattern escapes", _meta(predictions="../e1/preds_seed{seed}.jsonl"), "predictions"),
    ("prediction pattern format attack", _meta(predictions="{seed:>999999999}.jsonl"), "placeholder"),
    ("prediction pattern attribute", _meta(predictions="{seed.__class__}.jsonl"), "placeholder"),
    ("prediction file links outside", _link("subs/e1/preds_seed0.jsonl", "victim.txt"), "outside"),
    ("entry folder links outside", lambda root: (root / "elsewhere").mkdir() or os.symlink(root / "elsewhere", root / "subs" / "e2"),
     "outside"),
    ("ground truth links outside", _link("subs/_datasets/d/annotations/val.jsonl", "victim.txt"), "outside"),
    ("submission.yaml links outside", _link("subs/e1/submission.yaml", "victim.txt"), "outside"),
    ("source.yaml links outside", _link("subs/_datasets/d/source.yaml", "victim.txt"), "outside"),
    ("paper URL breaks out of the link", _meta(paper="https://x.org/a)(javascript:alert(1)"), "paper"),
    ("paper javascript URL", _meta(paper="javascript:alert(1)"), "paper"),
    ("paper http URL", _meta(paper="http://example.org/p"), "paper"),
    ("paper URL with quotes", _meta(paper='https://x.org/"onmouseover="alert(1)'), "paper"),
    ("code URL with credentials", _meta(code="https://user:pw@x.org/"), "code"),
    ("seed beyond 63 bits", _meta(seeds=[2**70]), "seeds"),
    ("name of 100,000 characters", _meta(name="x" * 100_000), "name"),
    ("seed a boolean", _meta(seeds=[True]), "seeds"),
    ("YAML alias bomb", _yaml_text(_bomb_yaml()), "name"),
    ("YAML nested too deeply", _yaml_text("name: " + "[" * 1500 + "]" * 1500 + "\n"), "YAML"),
    ("YAML integer of 5000 digits", _yaml_text("seeds: [" + "7" * 5000 + "]\n"), "YAML"),
    ("YAML not UTF-8", lambda root: (root / "subs" / "e1" / "submission.yaml").write_bytes(b"name: \xff\n"), "UTF-8"),
    ("YAML larger than 1 MiB", _yaml_text("notes: " + "x" * (2 << 20) + "\n"), "bound"),
    ("YAML keys of mixed types", _yaml_text("1: a\ntrue: b\nzz: c\n"), "unknown field"),
    ("source.yaml clip_len 1e-300", lambda root: (root / "subs/_datasets/d/source.yaml").write_text(
        "title: T\ncolumns: qvhighlights\nclip_len: 1.0e-300\n"), "clip_len"),
    ("source.yaml clip_len inf", lambda root: (root / "subs/_datasets/d/source.yaml").write_text(
        "title: T\ncolumns: qvhighlights\nclip_len: .inf\n"), "clip_len"),
    ("source.yaml title a list", lambda root: (root / "subs/_datasets/d/source.yaml").write_text(
        "title: [1]\ncolumns: qvhighlights\nclip_len: 2\n"), "title"),
]


@pytest.mark.parametrize(("case", "setup", "words"), REFUSED, ids=[c[0] for c in REFUSED])
@pytest.mark.parametrize("command", ["check", "build"])
def test_hostile_entry_is_refused_before_anything_is_written(work: Path, command: str, case: str,
                                                              setup: Callable[[Path], None], words: str) -> None:
    setup(work)
    before = snapshot(work)
    argv = ["submission", "check", "subs"] if command == "check" else ["leaderboard", "build", "--submissions", "subs",
                                                                      "--out", "boards"]
    result = run_guarded(argv)
    assert result.code == 2, case
    assert words in result.err, result.err
    assert_confined(before, snapshot(work))


HOSTILE_TEXT = [
    ("script", "<script>alert(1)</script>"),
    ("newline forges a row", "x\n| 1 | forged | model | 1 |"),
    ("pipe", "a | b"),
    ("link", "[click](javascript:alert(1))"),
    ("image", "![x](https://evil.example/x.png)"),
    ("code span", "`rm -rf`"),
    ("backslash", "a\\|b"),
    ("line separator", "a\u2028b\u2029c"),
    ("mathtext symbol", "$\\foo$"),
    ("mathtext nested", "$" + "\\sqrt{" * 150 + "}" * 150 + "$"),
]


@pytest.mark.parametrize(("case", "text"), HOSTILE_TEXT, ids=[c[0] for c in HOSTILE_TEXT])
def test_submitted_text_is_rendered_as_text(work: Path, case: str, text: str) -> None:
    _write_meta(work, name=text)
    (work / "subs/_datasets/d/source.yaml").write_text(yaml.safe_dump(
        {"title": text, "columns": "qvhighlights", "clip_len": 2.0}))
    assert run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"]).code == 0
    for page in (work / "boards" / "d" / "val" / "leaderboard.md", work / "boards" / "README.md"):
        markdown = page.read_text(encoding="utf-8")
        assert "<script" not in markdown and "](javascript" not in markdown and "![x]" not in markdown
        lines = markdown.splitlines()
        first = next(i for i, line in enumerate(lines) if line.startswith("| "))
        table = [lines[first], *(line for line in lines[first + 2 : first + 3])]  # header and the one entry
        assert lines[first + 3] == "", "the entry is one row"
        assert len({len(re.findall(r"(?<!\\)\|", line)) for line in table}) == 1, table  # unescaped cell ends
    page = (work / "boards" / "d" / "val" / "leaderboard.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page


def test_links_only_for_strict_https(work: Path) -> None:
    assert run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"]).code == 0
    assert "[Entry](https://arxiv.org/abs/2501.07305)" in (work / "boards/d/val/leaderboard.md").read_text()


def _cache(work: Path, payload: object) -> None:
    path = work / "boards" / ".cache" / "scores.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))


def _victim_digest(work: Path) -> str:
    import hashlib

    return hashlib.sha256((work / "victim.txt").read_bytes()).hexdigest()


CACHES = [
    ("not JSON", lambda w: "{not json"),
    ("a list", lambda w: [1, 2]),
    ("runs a list", lambda w: {"version": 1, "runs": [1], "outputs": [2]}),
    ("metrics of strings", lambda w: {"version": 1, "runs": {"k": {"a": "b"}}, "outputs": {}}),
    ("outputs escape --out", lambda w: {"version": 1, "runs": {}, "stamp": "x",
                                         "outputs": {"../victim.txt": _victim_digest(w)}}),
    ("outputs absolute", lambda w: {"version": 1, "runs": {}, "stamp": "x",
                                     "outputs": {str(w / "victim.txt"): _victim_digest(w)}}),
]


@pytest.mark.parametrize(("case", "payload"), CACHES, ids=[c[0] for c in CACHES])
def test_a_hostile_cache_is_ignored_with_a_warning(work: Path, case: str, payload: Callable[[Path], object]) -> None:
    _cache(work, payload(work))
    result = run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"])
    assert result.code == 0 and "warning:" in result.err and "cache" in result.err
    assert (work / "victim.txt").read_text() == "keep me\n"
    assert (work / "boards" / "d" / "val" / "leaderboard.md").is_file()


def test_only_outputs_it_wrote_are_deleted(work: Path) -> None:
    assert run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"]).code == 0
    cache = json.loads((work / "boards/.cache/scores.json").read_text())
    mine = work / "boards" / "d" / "val" / "notes.txt"
    mine.write_text("a file of the user's")
    edited = work / "boards" / "d" / "val" / "leaderboard.csv"
    edited.write_text("edited by hand\n")
    cache["outputs"]["d/val/notes.txt"] = cache["outputs"]["d/val/leaderboard.csv"]
    (work / "boards/.cache/scores.json").write_text(json.dumps(cache))
    _write_meta(work, split="other")  # the d/val outputs are now stale
    (work / "subs/_datasets/d/annotations/other.jsonl").write_text(_jsonl(GT))
    result = run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"])
    assert result.code == 0
    assert mine.read_text() == "a file of the user's"  # not an output name: kept (cache ignored)
    assert edited.read_text() == "edited by hand\n"  # changed since written: kept


OUTPUTS = [
    ("--out is the submissions", ["--out", "subs"], "--out"),
    ("--out inside the submissions", ["--out", "subs/_boards"], "--out"),
    ("--out contains the submissions", ["--out", "."], "--out"),
    ("--out under a file", ["--out", "victim.txt/boards"], "victim.txt"),
    ("--out is a file", ["--out", "victim.txt"], "victim.txt"),
    ("--cache is a submission file", ["--out", "boards", "--cache", "subs/e1/submission.yaml"], "--cache"),
]


@pytest.mark.parametrize(("case", "args", "words"), OUTPUTS, ids=[c[0] for c in OUTPUTS])
def test_outputs_never_overwrite_inputs(work: Path, case: str, args: list[str], words: str) -> None:
    before = snapshot(work)
    result = run_guarded(["leaderboard", "build", "--submissions", "subs", *args])
    assert result.code == 2 and words in result.err, result.err
    assert_confined(before, snapshot(work))


def test_second_writer_is_refused_and_a_stale_lock_taken_over(work: Path) -> None:
    with folder_lock(work / "boards", command="mrbench leaderboard build (the first)"):
        result = run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"])
        assert result.code == 2 and f"pid {os.getpid()}" in result.err and "the first" in result.err
    lock_path(work / "boards").write_text(json.dumps({"pid": 2**22 + 12345, "host": "h", "command": "mrbench gone"}))
    result = run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"])
    assert result.code == 0 and "stale lock" in result.err and "mrbench gone" in result.err
    assert not lock_path(work / "boards").exists()


BASELINES = [
    ("--dataset escapes", ["--dataset", "../../escaped", "--split", "val"], "--dataset"),
    ("--split escapes", ["--dataset", "d2", "--split", "../val"], "--split"),
    ("--submissions is the data", ["--dataset", "d2", "--split", "val", "--submissions", "data"], "--submissions"),
    ("--seeds negative", ["--dataset", "d2", "--split", "val", "--seeds", "-1"], "--seeds"),
    ("--seeds beyond 63 bits", ["--dataset", "d2", "--split", "val", "--seeds", str(2**64)], "--seeds"),
]


@pytest.mark.parametrize(("case", "args", "words"), BASELINES, ids=[c[0] for c in BASELINES])
def test_baselines_refuse_hostile_names(work: Path, case: str, args: list[str], words: str) -> None:
    (work / "data" / "annotations").mkdir(parents=True)
    (work / "data" / "dataset.json").write_text(json.dumps({"name": "x", "clip_len": 2.0, "video_features": {}}))
    before = snapshot(work)
    result = run_guarded(["submission", "baselines", "--data", "data", "--submissions", "subs", *args])
    assert result.code == 2 and words in result.err, result.err
    assert_confined(before, snapshot(work))


# --------------------------------------------------------------------------------------------
# fuzzing submission.yaml

FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=30), st.sampled_from(["../x", "/etc", "a/b", "..", "{seed}", "{seed!r}", "<b>", "https://a.org/x"]),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from([*META, "predictions", "masked_variant", "unknown"]), value=FIELD_VALUES,
       drop=st.booleans())
def test_fuzzed_submission_yaml(work: Path, field: str, value: object, drop: bool) -> None:
    meta = dict(META)
    if drop:
        meta.pop(field, None)
    else:
        meta[field] = value
    (work / "subs" / "e1" / "submission.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True))
    before = snapshot(work)
    run_guarded(["submission", "check", "subs"])
    run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"])
    assert_confined(before, snapshot(work), "boards")


def test_links_planted_in_the_output_are_not_followed(work: Path) -> None:
    (work / "elsewhere").mkdir()
    (work / "boards").mkdir()
    os.symlink(work / "elsewhere", work / "boards" / "d")
    before = snapshot(work)
    result = run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"])
    assert result.code == 2 and "outside" in result.err
    assert_confined(before, snapshot(work), "boards/.cache")
    os.unlink(work / "boards" / "d")
    os.symlink(work / "victim.txt", lock_path(work / "boards"))
    result = run_guarded(["leaderboard", "build", "--submissions", "subs", "--out", "boards"])
    assert result.code == 2 and "lock" in result.err
    assert (work / "victim.txt").read_text() == "keep me\n"


def test_exporting_ground_truth_never_writes_through_a_planted_link(work: Path) -> None:
    from mrbench.data.synth import SynthConfig, generate

    generate(SynthConfig(n_train=4, n_val=3, n_ood=1, n_clips=20), work / "data", progress=False)
    planted = work / "subs" / "_datasets" / "d2" / "annotations"
    planted.mkdir(parents=True)
    os.symlink(work / "victim.txt", planted / "val.jsonl")
    result = run_guarded(["submission", "baselines", "--data", "data", "--dataset", "d2", "--submissions", "subs",
                          "--seeds", "0"])
    assert result.code == 0
    assert (work / "victim.txt").read_text() == "keep me\n"
    assert not (planted / "val.jsonl").is_symlink()
