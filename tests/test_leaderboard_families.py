"""Entries "w/ TD-DETR" (``strategies: [tddetr]``): each follows its model's row with the change
of standard and spurious mAP, by hand; a model without a saliency head shows dashes for HL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mrbench.errors import ValidationError
from mrbench.leaderboard.render import csv_table, html_page, legend, markdown_table
from mrbench.leaderboard.submission import DatasetRef, Submission, load_submission
from mrbench.leaderboard.table import STRATEGIES, Group, base_of, delta, make_row, sorted_rows
from mrbench.scoring.keys import MR_MAP, SPURIOUS_MAP, hl_hit1, hl_map

HL_MAP, HL_HIT1 = hl_map("VeryGood"), hl_hit1("VeryGood")


def _entry(entry_id: str, name: str, model: str, seeds: tuple[int, ...], strategies: tuple[str, ...] = ()) -> Submission:
    return Submission(entry_id=entry_id, root=Path("/nonexistent"), name=name, model=model, kind="model",
                      features=("clip_features",), dataset="toy", split="val", seeds=seeds, date="2026-11-30",
                      submitted_by="tests", test_answers_used=False, self_scored=False, strategies=strategies)


def _metrics(map_: float, sp: float, hl: bool = True) -> dict[str, float | None]:
    out: dict[str, float | None] = {MR_MAP: map_, SPURIOUS_MAP: sp}
    if hl:
        out.update({HL_MAP: 30.0, HL_HIT1: 40.0})
    return out


def family_group() -> Group:
    """CG-DETR (mAP 30, 34 -> 32; Sp 10, 12 -> 11) and CG-DETR w/ TD-DETR (40, 44 -> 42; Sp 4, 6 -> 5):
    Δ mAP = +10, Δ Sp mAP = -6. QD-DETR (50; Sp 8) and TD-DETR, which is QD-DETR w/ TD-DETR (55; Sp 3):
    Δ +5, -5. BAM-DETR w/ TD-DETR (25) without its model's row; SnAG (20) without saliency."""
    group = Group(DatasetRef(name="toy", root=Path("."), title="Toy", columns="qvhighlights", clip_len=2.0), "val")
    rows = [
        (_entry("cg", "CG-DETR", "cg_detr", (0, 1)), {0: _metrics(30.0, 10.0), 1: _metrics(34.0, 12.0)}),
        (_entry("cg-td", "CG-DETR w/ TD-DETR", "cg_detr", (0, 1), ("tddetr",)),
         {0: _metrics(40.0, 4.0), 1: _metrics(44.0, 6.0)}),
        (_entry("qd", "QD-DETR", "qd_detr", (0,)), {0: _metrics(50.0, 8.0)}),
        (_entry("td", "TD-DETR", "tddetr", (0,), ("tddetr",)), {0: _metrics(55.0, 3.0)}),
        (_entry("bam-td", "BAM-DETR w/ TD-DETR", "bam_detr", (0,), ("tddetr",)), {0: _metrics(25.0, 2.0)}),
        (_entry("snag", "SnAG", "snag", (0,)), {0: _metrics(20.0, 5.0, hl=False)}),
    ]
    for sub, per_seed in rows:
        group.rows.append(make_row(sub, per_seed))
    return group


def test_a_strategy_row_follows_its_models_row_and_families_rank_by_their_best() -> None:
    group = family_group()
    assert [r.meta["entry"] for r in sorted_rows(group)] == ["qd", "td", "cg", "cg-td", "bam-td", "snag"]
    by_id = {r.meta["entry"]: r for r in group.rows}
    assert base_of(by_id["cg-td"], group) is by_id["cg"]
    assert base_of(by_id["bam-td"], group) is None and base_of(by_id["cg"], group) is None
    assert delta(by_id["cg-td"], group, MR_MAP) == 10.0
    assert delta(by_id["cg-td"], group, SPURIOUS_MAP) == -6.0
    assert delta(by_id["cg"], group, MR_MAP) is None
    assert base_of(by_id["td"], group) is by_id["qd"]  # tddetr is QD-DETR w/ TD-DETR
    assert (delta(by_id["td"], group, MR_MAP), delta(by_id["td"], group, SPURIOUS_MAP)) == (5.0, -5.0)


def test_markdown_shows_the_deltas_and_dashes_for_a_model_without_saliency() -> None:
    group = family_group()
    lines = markdown_table(group).splitlines()
    assert lines[0].endswith("| Ratio ↑ | Δ mAP ↑ | Δ Sp mAP ↓ | Flags |")
    assert lines[1].count("|") == lines[0].count("|")
    cells = {line.split(" | ")[1]: line.split(" | ") for line in lines[2:]}
    assert [line.split(" | ")[1] for line in lines[2:]] == [
        "QD-DETR", "TD-DETR", "CG-DETR", "CG-DETR w/ TD-DETR", "BAM-DETR w/ TD-DETR", "SnAG"]
    cg_td = cells["CG-DETR w/ TD-DETR"]
    assert cg_td[0] == "| 4" and cg_td[8] == "42.00 ± 2.83"  # mAP: mean of 40 and 44, std sqrt(8)
    assert cg_td[-3:] == ["+10.00", "-6.00", " |"]
    assert cells["CG-DETR"][-3:] == ["", "", " |"]  # compared with nothing: empty
    assert cells["BAM-DETR w/ TD-DETR"][-3:] == ["", "", " |"]
    assert cells["TD-DETR"][-3:] == ["+5.00", "-5.00", " |"]
    assert cells["SnAG"][9:11] == ["—", "—"]  # HL mAP, HIT@1
    assert cells["QD-DETR"][9:11] == ["30.00", "40.00"]
    assert "Δ = the mean of a row trained with a strategy (w/ TD-DETR)" in legend(group)


def test_csv_and_html_carry_the_deltas() -> None:
    group = family_group()
    csv = csv_table(group).splitlines()
    assert csv[0].endswith(",Ratio-mAP_mean,Ratio-mAP_std,Delta-MR-full-mAP,Delta-Spurious-mAP")
    assert csv[4].startswith("4,cg-td,CG-DETR w/ TD-DETR,")
    assert csv[4].endswith(",10.0000,-6.0000")
    assert csv[3].endswith(",,")  # CG-DETR: no delta
    page = html_page(group, {})
    assert "Δ mAP ↑" in page and 'data-v="10.000000">+10.00</td>' in page and 'data-v="-6.000000">-6.00</td>' in page


def test_without_a_pair_there_are_no_delta_columns() -> None:
    group = family_group()
    group.rows = [r for r in group.rows if r.meta["entry"] not in ("cg", "qd")]  # no model's row left
    assert "Δ" not in markdown_table(group) and "Delta" not in csv_table(group) and "Δ" not in legend(group)
    assert [r.meta["entry"] for r in sorted_rows(group)] == ["td", "cg-td", "bam-td", "snag"]


def test_metadata_carries_strategies_only_when_set(tmp_path: Path) -> None:
    """An entry without strategies has the metadata it had before (the committed tables rebuild)."""
    assert "strategies" not in _entry("a", "A", "a", (0,)).metadata()
    assert _entry("b", "B", "b", (0,), ("tddetr",)).metadata()["strategies"] == ["tddetr"]
    entry = tmp_path / "cg-detr-tddetr"
    entry.mkdir()
    fields = {"name": "CG-DETR w/ TD-DETR (tiny preset)", "model": "cg_detr", "strategies": ["tddetr"],
              "kind": "model", "features": ["clip_features"], "dataset": "toy", "split": "val", "seeds": [0],
              "date": "2026-11-30", "submitted_by": "tests", "test_answers_used": False, "self_scored": False}
    (entry / "submission.yaml").write_text(yaml.safe_dump(fields), encoding="utf-8")
    assert load_submission(entry).strategies == ("tddetr",)


def test_unknown_or_repeated_strategies_name_the_field(tmp_path: Path) -> None:
    fields = {"name": "X", "model": "x", "kind": "model", "features": [], "dataset": "toy", "split": "val",
              "seeds": [0], "date": "2026-11-30", "submitted_by": "tests", "test_answers_used": False,
              "self_scored": False}
    entry = tmp_path / "x"
    entry.mkdir()
    for value, words in ((["vsdc"], r"must be a list of strategies \(tddetr\)"), (["tddetr", "tddetr"], "repeated"),
                         ("tddetr", "must be a list")):
        (entry / "submission.yaml").write_text(yaml.safe_dump({**fields, "strategies": value}), encoding="utf-8")
        with pytest.raises(ValidationError, match=words) as info:
            load_submission(entry)
        assert info.value.field == "strategies"


def test_the_strategies_and_their_base_models_match_the_model_registry() -> None:
    """The leaderboard knows the strategies without importing the models (torch); they must agree."""
    pytest.importorskip("torch")
    import reference_models

    assert sorted(STRATEGIES) == reference_models.list_strategies()
    for name, base in STRATEGIES.items():
        assert reference_models.with_strategies(base, [name]) == (name, (name,))


def test_the_scatter_plot_draws_the_pairs() -> None:
    """An arrow per pair (model -> model w/ TD-DETR): the plot differs from one without pairs."""
    from mrbench.leaderboard.render import scatter_png

    group = family_group()
    with_pairs = scatter_png(group)
    for row in group.rows:
        row.meta.pop("strategies", None)
    assert with_pairs is not None and with_pairs.startswith(b"\x89PNG") and with_pairs != scatter_png(group)
