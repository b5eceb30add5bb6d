"""The findings page of an experiment report: each question answered in sentences built from the
tables' numbers (so that it rebuilds with them), followed by the tables themselves."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mrbench.experiment import analysis as A
from mrbench.experiment.results import LEARNED, Results, Table, flank_series, is_positive_control

PAPER_VARIANT = "noise-m3"


def _f(value: float, digits: int = 1) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _grid_section(results: Results) -> list[str]:
    exp = results.experiment
    cells = results.cells
    models = cells[cells["kind"] == "model"]
    lines = [
        f"Grid: **{len(cells)} of {exp['cells']} cells** finished ({len(models)} trained models, "
        f"{len(cells) - len(models)} query-blind baselines) over {len(results.datasets())} synthetic datasets. "
        f"Training: preset `{exp['preset']}`, {', '.join(f'`{s}`' for s in exp['train_sets'])}; standard scores on "
        f"`{exp['split']}` (cues as in training) and `{exp['ood_split']}` (cues decorrelated); every masked variant "
        f"masks `{exp['split']}`. Compute summed over the cells: {cells['seconds'].sum() / 60:.1f} min.",
    ]
    if len(cells) < exp["cells"]:
        lines.append(f"\n**Partial grid**: {exp['cells'] - len(cells)} cells did not finish; every number below uses "
                     "the cells that did.")
    rates = models.groupby("name", sort=False)["samples_per_s"].median()
    if rates.notna().any():
        lines.append("\nTraining throughput (median samples/s over the cells): " + ", ".join(
            f"{results.title(name)} {rate:.0f}" for name, rate in rates.items() if not math.isnan(rate)) + ".")
    lines.append("\n| dataset | planted cues (synth settings over the defaults) |\n|---|---|")
    for d in results.datasets():
        settings = ", ".join(f"{k}={v}" for k, v in d["synth"].items() if k not in ("n_train", "n_val", "n_ood"))
        lines.append(f"| {d['label']} | {settings or 'defaults: scene 0.9, flank 0.9, position 0.5, content 0.5'} |")
    return lines


def _training(table: Table) -> list[str]:
    frame = table.frame.dropna(subset=["above floor"])
    if frame.empty:
        return ["No model cell finished."]
    worst = frame.loc[frame["above floor"].idxmin()]
    lines = [f"The smallest margin of a model's standard mAP over the best blind baseline is "
             f"**{worst['above floor']:.1f} points** ({worst['model']} on {worst['dataset']}: mAP {worst.iloc[3]} "
             f"against {worst['blind floor']:.1f})."]
    weak = frame[frame["above floor"] < 10]
    if not weak.empty:
        lines.append("Within 10 points of the floor (not trained well enough to matter there): " + "; ".join(
            f"{r['model']} on {r['dataset']} ({r['above floor']:.1f})" for _, r in weak.iterrows()) + ".")
    else:
        lines.append("Every model is at least 10 points above the floor on every dataset.")
    return lines


def _specificity(table: Table) -> list[str]:
    rows = table.frame[table.frame["at the floor"].isin(["yes", "no"])]
    at = rows[rows["at the floor"] == "yes"]["model"].tolist()
    above = rows[rows["at the floor"] == "no"]
    lines = []
    if at:
        lines.append(f"At the blind floor (the difference's interval includes 0 or lies below): {', '.join(at)}.")
    if not above.empty:
        lines.append("**Above the floor with no cue to use**: " + "; ".join(
            f"{r['model']} (Sp mAP {r['Sp mAP [95% CI]']}, over the floor by {r['Sp mAP - blind floor [95% CI]']})"
            for _, r in above.iterrows()) + ". The protocol's floor is not the blind floor: what lifts these "
            "scores is not a planted cue.")
    detector = table.frame[table.frame["model"].str.startswith("Mask detector")]
    if not detector.empty:
        lines.append(f"The query-blind mask detector reaches Sp mAP {detector['Sp mAP [95% CI]'].iloc[0]} on the "
                     "same masked queries: spotting the mask alone earns that much.")
    cim = rows["centre in mask %"]
    if cim.notna().any():
        lines.append(f"Yet the models' top-1 centre falls inside the masked span for {_f(cim.min())}-{_f(cim.max())} % "
                     "of these queries: with no cue at all, the mask itself draws them.")
    return lines


def _sensitivity(results: Results, raw: pd.DataFrame) -> list[str]:
    lines = []
    series = flank_series(raw)
    if len(series) > 1:
        strengths = [raw[raw["dataset"] == d]["synth"].iloc[0].get("rho_flank", 0.9) for d in series]
        lines.append("Spurious mAP (paper protocol) as the flank cue grows "
                     f"({' -> '.join(_f(s, 1) for s in strengths)}):")
        lines.append("")
        for model in results.models():
            part = raw[(raw["model"] == model)].set_index("dataset").reindex(series)
            if part["Sp mAP"].notna().sum() < 2:
                continue
            values = part["Sp mAP"].to_numpy(dtype=float)
            monotone = bool(np.all(np.diff(values[~np.isnan(values)]) >= 0))
            lines.append(f"- {results.title(model)}: {' -> '.join(_f(v) for v in values)} "
                         f"({'rises at every step' if monotone else 'not monotone'}; retained "
                         f"{' -> '.join(_f(v, 2) for v in part['retained'].to_numpy(dtype=float))})")
        lines.append("")
    for d in results.datasets():
        if is_positive_control(d["synth"]):
            part = raw[(raw["dataset"] == d["name"]) & raw["model"].isin(results.models())]
            floor = raw[(raw["dataset"] == d["name"]) & (raw["model"] == "blind floor")]["Sp mAP"]
            floor_value = float(floor.iloc[0]) if len(floor) else math.nan
            lines.append(f"{d['label'].capitalize()} (best blind baseline {_f(floor_value)} mAP): " + "; ".join(
                f"{r['title']} mAP {_f(r['mAP'])}, Sp mAP {_f(r['Sp mAP'])}, retained "
                f"{A.Estimate(r['retained'], r['retained low'], r['retained high']).text(2)}"
                for _, r in part.iterrows()) + ".")
            untrained = [r["title"] for _, r in part.iterrows() if r["mAP"] < floor_value + LEARNED]
            if untrained:
                lines.append(f"{', '.join(untrained)}: within {LEARNED:g} points of the best blind baseline, they "
                             "learned no more than a query-blind prior; their retained share only shows what the "
                             "protocol does to such predictions. The informative rows are the models that learned "
                             "the control.")
            lines.append("")
    others = [d for d in results.datasets() if d["name"] not in series and not is_positive_control(d["synth"])]
    for d in others:
        part = raw[(raw["dataset"] == d["name"]) & raw["model"].isin(results.models())]
        if not part.empty:
            lines.append(f"{d['label']}: Sp mAP " + ", ".join(
                f"{r['title']} {_f(r['Sp mAP'])} (retained {_f(r['retained'], 2)})" for _, r in part.iterrows()) + ".")
    return lines


def _predictive(table: Table) -> list[str]:
    frame = table.frame
    if frame.empty:
        return ["Too few cells for a correlation."]
    lines = []
    for measure in ("Sp mAP noise-m3", "retained noise-m3", "span mAP noise-m3", "centre in mask noise-m3"):
        row = frame[frame["measure"] == measure]
        if not row.empty:
            r = row.iloc[0]
            lines.append(f"- {measure}: Spearman rho {A.Estimate(r['rho'], r['low'], r['high']).text(2)} over "
                         f"{r['cells']} cells")
    full = frame[frame["cells"] == frame["cells"].max()]  # measures every cell has (every dataset's variants)
    best = full.loc[full["rho"].idxmax()]
    lines.append(f"\nOf the measures every cell has, the one that ranks cells best by the real harm is "
                 f"**{best['measure']}** (rho {A.Estimate(best['rho'], best['low'], best['high']).text(2)}, "
                 f"{best['cells']} cells).")
    return lines


def _mask(per_variant: Table, matrix: pd.DataFrame) -> list[str]:
    lines = []
    frame = per_variant.frame
    for label in dict.fromkeys(frame["dataset"]):
        part = frame[frame["dataset"] == label]
        lines.append(f"- {label}: models' Sp mAP " + ", ".join(
            f"{r['variant']} {_f(r['Sp mAP (mean over cells)'])}" for _, r in part.iterrows()) +
            "; mask detector " + ", ".join(f"{r['variant']} {_f(r['mask detector Sp mAP'])}"
                                           for _, r in part.iterrows()))
    masking = [v for v in matrix.index if v.endswith("-m3") and not v.startswith("recontext")]
    if len(masking) > 1:
        sub = matrix.loc[masking, masking].to_numpy(dtype=float)
        off = sub[~np.eye(len(masking), dtype=bool)]
        lines.append(f"\nKendall tau-b between the model-cell rankings of the masking strategies at 3 s: "
                     f"from {np.nanmin(off):.2f} to {np.nanmax(off):.2f} (mean {np.nanmean(off):.2f}).")
    margins = [v for v in matrix.index if v.startswith("noise-")]
    if len(margins) > 1:
        sub = matrix.loc[margins, margins].to_numpy(dtype=float)
        off = sub[~np.eye(len(margins), dtype=bool)]
        lines.append(f"Between the noise margins ({', '.join(margins)}): from {np.nanmin(off):.2f} to {np.nanmax(off):.2f}.")
    return lines


def _score_against(table: Table) -> list[str]:
    frame = table.frame
    if frame.empty:
        return ["No model cell has finished on both controls yet."]
    lines = []
    for control in dict.fromkeys(frame["control"]):
        part = frame[frame["control"] == control]
        above = float(part["control mAP above blind floor"].iloc[0])
        lines.append(f"**{control}**, models {part['models'].iloc[0]} (standard mAP {above:+.1f} points from the "
                     "best blind baseline" + ("; none learned the control, so it cannot separate anything"
                                             if above < LEARNED else "") + "):")
        lines.append("")
        for variant in dict.fromkeys(part["variant"]):
            rows = part[part["variant"] == variant]
            lines.append(f"- {variant}: " + "; ".join(
                f"{r['measure']} {A.Estimate(r['separation'], r['low'], r['high']).text(2)}" for _, r in rows.iterrows()))
        paper = part[part["variant"] == PAPER_VARIANT]
        if not paper.empty:
            best = paper.loc[paper["separation"].idxmax()]
            widest = part.loc[part["separation"].idxmax()]
            lines.append(f"\nUnder the paper's mask (noise, 3 s) the widest separation is **{best['measure']}** "
                         f"({A.Estimate(best['separation'], best['low'], best['high']).text(2)}); over every variant, "
                         f"{widest['measure']} under {widest['variant']} "
                         f"({A.Estimate(widest['separation'], widest['low'], widest['high']).text(2)}).")
        lines.append("")
    return lines


def _claim(table: Table) -> list[str]:
    if table.frame.empty:
        return ["No pair of a model and its w/ TD-DETR variant has finished yet."]
    lines = []
    for _, r in table.frame.iterrows():
        lines.append(f"- {r['with TD-DETR']} against {r['base']} ({r['seeds']} seeds): mAP {r['mAP base']} -> "
                     f"{r['mAP w/']}, Sp mAP {r['Sp mAP base']} -> {r['Sp mAP w/']}; Δ Sp mAP "
                     f"{r['Δ Sp mAP [t 95% CI]']} (t over seeds), {r['Δ Sp mAP [query bootstrap]']} (queries); "
                     f"Δ retained {r['Δ retained [t 95% CI]']}.")
    return lines


def render_findings(results: Results, tables: dict[str, Table], raw: pd.DataFrame, matrix: pd.DataFrame) -> str:
    """The page: the grid, each question's answer with its numbers and intervals, the tables."""
    exp = results.experiment
    out = [f"# {exp['title']}", "", exp.get("description", "").strip(), "",
           "Rebuilt by `mrbench experiment report` from the committed cell results; every interval is a 95 % "
           "interval (bootstrap with a fixed seed, or Student t over seeds where stated).", ""]
    out += _grid_section(results)
    out += ["", "![sensitivity](sensitivity.png)", "", "## 1. Is every model trained well enough to matter?", ""]
    out += _training(tables["training"])
    if "specificity" in tables:
        out += ["", "## 2. Specificity: no planted cue", ""] + _specificity(tables["specificity"])
    out += ["", "## 3. Sensitivity and the positive control", ""] + _sensitivity(results, raw)
    out += ["", "## 4. Predictive value", "", "![predictive](predictive.png)", ""] + _predictive(tables["predictive"])
    out += ["", "## 5. Mask dependence", "", "![mask dependence](mask_dependence.png)", ""]
    out += _mask(tables["mask_dependence"], matrix)
    if "score_against" in tables:
        out += ["", "## 6. What to score against", ""]
        if not tables["score_against"].frame.empty:
            out += ["![controls](controls.png)", ""]
        out += _score_against(tables["score_against"])
    if "claim" in tables:
        out += ["", "## 7. The paper's claim", ""] + _claim(tables["claim"])
    out += ["", "## Tables", ""]
    for table in tables.values():
        out += [f"### {table.title}", "", table.markdown, "", table.note,
                f"([csv]({table.name}.csv), [md]({table.name}.md))", ""]
    return "\n".join(out).rstrip() + "\n"
