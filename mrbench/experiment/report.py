"""``mrbench experiment report``: tables, plots and a findings page from the cells of a run.

Reads ``DIR/experiment.json`` and ``DIR/cells/*/*/{cell.json,queries.parquet}`` only (never a
dataset or a prediction file), so the committed cell results rebuild the committed report byte for
byte. A partial grid (cells still missing) is reported as such. The questions (docs/experiments.md):

1. training: is every model trained well above the blind baselines?
2. specificity: with no planted cue, does the spurious mAP sit at the blind floor?
3. sensitivity: does it grow with a cue that survives the mask, and reach the standard mAP on the
   positive control (moments without content of their own)?
4. predictive value: does it rank cells by the real harm of a cue (mAP drop from the split with
   the cues to the split without them)?
5. mask dependence: the same checkpoints under every strategy and margin, the rank agreement
   between strategies, and what the query-blind mask detector earns;
6. what to score against: the original windows, the masked span, or the centre-in-mask rate;
7. the paper's claim: does TD-DETR (and each "w/ TD-DETR" variant) lower the spurious mAP?
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mrbench.experiment import analysis as A
from mrbench.experiment.findings import render_findings
from mrbench.experiment.results import (
    BASELINE_TITLES,
    BLIND,
    LEARNED,
    PAPER,
    Results,
    Table,
    find_dataset,
    flank_series,
    is_default,
    is_no_cue,
    is_positive_control,
    load_results,
)
from mrbench.io import atomic_write_bytes, atomic_write_text

MEASURES = {"original windows (paper)": "ap", "masked span": "ap_span", "centre in mask": "in_mask"}
PNG_DPI = 100


def variant_order(name: str) -> tuple[int, float]:
    """Masked variants in the strategies' order, then by margin (``noise-m0`` < ``noise-m3``)."""
    from mrbench.masking.strategies import STRATEGIES

    strategy, margin = name.rsplit("-m", 1)
    return (STRATEGIES.index(strategy) if strategy in STRATEGIES else len(STRATEGIES), float(margin))


# --- tables ------------------------------------------------------------------------------------------
def _md(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(no finished cells for this table yet)"
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---:" if frame[c].dtype.kind in "fi" else "---" for c in frame.columns) + "|"
    lines = [header, rule]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.2f}"
    return str(value).replace("|", "\\|")


def _pm(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def _floor(results: Results, dataset: str, evaluation: str) -> tuple[str | None, np.ndarray | None]:
    """The best blind baseline on ``evaluation`` (its cell and per-query AP)."""
    best: tuple[float, str | None, np.ndarray | None] = (-1.0, None, None)
    for name in BLIND:
        key = results.baseline_cell(dataset, name)
        if key is not None and results.has(key, evaluation):
            ap = results.column(key, evaluation, "ap")
            if ap.mean() > best[0]:
                best = (float(ap.mean()), name, ap)
    return best[1], best[2]


def training_table(results: Results) -> Table:
    split, ood = results.experiment["split"], results.experiment["ood_split"]
    rows = []
    for dataset in results.datasets():
        name = dataset["name"]
        floor_name, floor = _floor(results, name, split)
        for model in results.models(name):
            keys = list(results.model_cells(name, model)["key"])
            standard = [100 * results.column(k, split, "ap").mean() for k in keys if results.has(k, split)]
            shifted = [100 * results.column(k, ood, "ap").mean() for k in keys if results.has(k, ood)]
            floor_value = math.nan if floor is None else 100 * floor.mean()
            rows.append({"dataset": results.label(name), "model": results.title(model), "seeds": len(keys),
                         f"mAP {split}": _pm(standard), f"mAP {ood}": _pm(shifted),
                         "blind floor": floor_value, "best blind": BASELINE_TITLES.get(floor_name or "", "—"),
                         "above floor": float(np.mean(standard)) - floor_value if standard else math.nan})
    frame = pd.DataFrame(rows)
    return Table("training", "Is every model trained? Standard mAP against the best blind baseline", frame, _md(frame),
                 f"mAP on `{split}` (mean ± std over seeds) and on `{ood}` (the cues decorrelated); the blind floor is "
                 "the best query-blind baseline's mAP on the same split.")


def _model_ap(results: Results, dataset: str, model: str,
              evaluation: str) -> tuple[list[str], np.ndarray | None, np.ndarray | None]:
    """A model's cells on ``dataset`` and its seed-averaged per-query AP on ``evaluation`` and on the split."""
    keys = list(results.model_cells(dataset, model)["key"])
    return keys, results.seed_mean(keys, evaluation, "ap"), results.seed_mean(keys, results.experiment["split"], "ap")


def specificity_table(results: Results, dataset: str) -> Table:
    _, floor = _floor(results, dataset, PAPER)
    detector = results.baseline_cell(dataset, "mask_detector")
    rows = []
    for model in results.models(dataset):
        keys, masked, standard = _model_ap(results, dataset, model, PAPER)
        if masked is None or standard is None:
            continue
        over = (A.boot_queries(lambda a, b: 100 * (a.mean(1) - b.mean(1)), [[masked, floor]],
                               offset=A.offset_of("floor", dataset, model))
                if floor is not None else A.Estimate(math.nan))
        rows.append({"model": results.title(model), "seeds": len(keys), "mAP": 100 * standard.mean(),
                     "Sp mAP [95% CI]": A.pct_mean(masked, A.offset_of(dataset, model, PAPER)).text(),
                     "Sp mAP - blind floor [95% CI]": over.text(),
                     "at the floor": "yes" if not over.excludes_zero or over.value < 0 else "no",
                     "centre in mask %": 100 * results.seed_mean(keys, PAPER, "in_mask").mean()})
    if floor is not None:
        rows.append({"model": "blind floor (best blind baseline)", "seeds": 1, "mAP": 100 * floor.mean(),
                     "Sp mAP [95% CI]": A.pct_mean(floor).text(), "Sp mAP - blind floor [95% CI]": "0",
                     "at the floor": "", "centre in mask %": math.nan})
    if detector is not None and results.has(detector, PAPER):
        rows.append({"model": BASELINE_TITLES["mask_detector"], "seeds": 1, "mAP": math.nan,
                     "Sp mAP [95% CI]": A.pct_mean(results.column(detector, PAPER, "ap")).text(),
                     "Sp mAP - blind floor [95% CI]": "", "at the floor": "",
                     "centre in mask %": 100 * results.column(detector, PAPER, "in_mask").mean()})
    frame = pd.DataFrame(rows)
    return Table("specificity", f"Specificity: spurious mAP with no planted cue ({results.label(dataset)})", frame,
                 _md(frame), "Paper protocol (noise, 3 s margin, original windows); intervals bootstrap the queries; "
                 "'at the floor': the interval of the difference with the best blind baseline (same queries) "
                 "includes 0 or lies below it.")


def _dataset_rows(results: Results, evaluation: str = PAPER) -> list[dict[str, Any]]:
    rows = []
    for dataset in results.datasets():
        name = dataset["name"]
        for model in results.models(name):
            keys, masked, standard = _model_ap(results, name, model, evaluation)
            if masked is None or standard is None:
                continue
            spurious = A.pct_mean(masked, A.offset_of(name, model, evaluation))
            retained = A.ratio_of_means(masked, standard, A.offset_of("retained", name, model, evaluation))
            rows.append({"dataset": name, "label": results.label(name), "model": model, "title": results.title(model),
                         "seeds": len(keys), "mAP": 100 * standard.mean(), "Sp mAP": spurious.value,
                         "Sp low": spurious.low, "Sp high": spurious.high, "retained": retained.value,
                         "retained low": retained.low, "retained high": retained.high,
                         "centre in mask %": 100 * results.seed_mean(keys, evaluation, "in_mask").mean(),
                         "synth": dataset["synth"]})
        _, floor = _floor(results, name, evaluation)
        detector = results.baseline_cell(name, "mask_detector")
        rows.append({"dataset": name, "label": results.label(name), "model": "blind floor", "title": "blind floor",
                     "seeds": 1, "mAP": math.nan, "Sp mAP": math.nan if floor is None else 100 * floor.mean(),
                     "Sp low": math.nan, "Sp high": math.nan, "retained": math.nan, "retained low": math.nan,
                     "retained high": math.nan, "centre in mask %": math.nan, "synth": dataset["synth"]})
        if detector is not None and results.has(detector, evaluation):
            rows.append({"dataset": name, "label": results.label(name), "model": "mask_detector",
                         "title": BASELINE_TITLES["mask_detector"], "seeds": 1, "mAP": math.nan,
                         "Sp mAP": 100 * results.column(detector, evaluation, "ap").mean(), "Sp low": math.nan,
                         "Sp high": math.nan, "retained": math.nan, "retained low": math.nan,
                         "retained high": math.nan,
                         "centre in mask %": 100 * results.column(detector, evaluation, "in_mask").mean(),
                         "synth": dataset["synth"]})
    return rows


def sensitivity_table(results: Results) -> tuple[Table, pd.DataFrame]:
    raw = pd.DataFrame(_dataset_rows(results))
    shown = pd.DataFrame({
        "dataset": raw["label"], "model": raw["title"], "seeds": raw["seeds"], "mAP": raw["mAP"],
        "Sp mAP [95% CI]": [A.Estimate(v, lo, hi).text() for v, lo, hi in zip(raw["Sp mAP"], raw["Sp low"],
                                                                             raw["Sp high"], strict=True)],
        "retained Sp/mAP [95% CI]": [A.Estimate(v, lo, hi).text(2) for v, lo, hi in
                                     zip(raw["retained"], raw["retained low"], raw["retained high"], strict=True)],
        "centre in mask %": raw["centre in mask %"],
    })
    return Table("sensitivity", "Sensitivity: spurious mAP (paper protocol) per dataset", shown, _md(shown),
                 "Retained = spurious mAP / standard mAP (1: the model finds the moment as well without it). Models "
                 "with several seeds: per-query values averaged over the seeds."), raw


def predictive_table(results: Results) -> tuple[Table, pd.DataFrame]:
    split, ood = results.experiment["split"], results.experiment["ood_split"]
    points = []
    for row in results.model_cells().itertuples():
        if not (results.has(row.key, split) and results.has(row.key, ood) and results.has(row.key, PAPER)):
            continue
        standard = 100 * results.column(row.key, split, "ap").mean()
        point = {"cell": row.key, "dataset": row.dataset, "model": row.name, "seed": row.seed, "mAP": standard,
                 "drop": standard - 100 * results.column(row.key, ood, "ap").mean()}
        for evaluation in sorted({e for (k, e) in results.values if k == row.key and e.startswith("masked:")}):
            variant = evaluation.split(":", 1)[1]
            masked = 100 * results.column(row.key, evaluation, "ap").mean()
            point[f"Sp mAP {variant}"] = masked
            point[f"retained {variant}"] = masked / standard if standard > 0 else math.nan
            point[f"span mAP {variant}"] = 100 * results.column(row.key, evaluation, "ap_span").mean()
            point[f"centre in mask {variant}"] = 100 * results.column(row.key, evaluation, "in_mask").mean()
        points.append(point)
    frame = pd.DataFrame(points)
    rows = []
    columns = [c for c in frame.columns if c.split(" ")[0] in ("Sp", "retained", "span", "centre")]
    for index, column in enumerate(columns):
        valid = frame[["drop", column]].dropna()
        if len(valid) < 4:
            continue
        rho = A.boot_correlation(valid[column].to_numpy(), valid["drop"].to_numpy(), A.spearman, offset=index)
        rows.append({"measure": column, "cells": len(valid), "Spearman rho with the drop [95% CI]": rho.text(2),
                     "rho": rho.value, "low": rho.low, "high": rho.high})
    table = pd.DataFrame(rows)
    shown = table.drop(columns=["rho", "low", "high"]) if not table.empty else table
    return Table("predictive", f"Predictive value: rank correlation with the mAP drop from `{split}` to `{ood}`", table,
                 _md(shown), "Each model cell is one point; the drop is the harm of relying on the planted cues "
                 "(they hold in training and on the first split, not on the second). Intervals bootstrap the cells."), frame


def mask_dependence_tables(results: Results, points: pd.DataFrame) -> tuple[Table, Table, pd.DataFrame]:
    rows = []
    for dataset in results.datasets():
        name = dataset["name"]
        models = results.model_cells(name)
        for variant in dataset["masks"]:
            evaluation = f"masked:{variant}"
            values = [100 * results.column(k, evaluation, "ap").mean() for k in models["key"] if results.has(k, evaluation)]
            centre = [100 * results.column(k, evaluation, "in_mask").mean() for k in models["key"]
                      if results.has(k, evaluation)]
            detector = results.baseline_cell(name, "mask_detector")
            _, floor = _floor(results, name, evaluation)
            rows.append({"dataset": results.label(name), "variant": variant, "model cells": len(values),
                         "Sp mAP (mean over cells)": float(np.mean(values)) if values else math.nan,
                         "Sp mAP min": float(np.min(values)) if values else math.nan,
                         "Sp mAP max": float(np.max(values)) if values else math.nan,
                         "centre in mask %": float(np.mean(centre)) if centre else math.nan,
                         "mask detector Sp mAP": (100 * results.column(detector, evaluation, "ap").mean()
                                                  if detector and results.has(detector, evaluation) else math.nan),
                         "blind floor": math.nan if floor is None else 100 * floor.mean()})
    per_variant = pd.DataFrame(rows)
    variants = sorted((c.removeprefix("Sp mAP ") for c in points.columns if c.startswith("Sp mAP ")),
                      key=variant_order)
    matrix = pd.DataFrame(index=variants, columns=variants, dtype=float)
    counts = pd.DataFrame(index=variants, columns=variants, dtype=float)
    for a in variants:
        for b in variants:
            both = points[[f"Sp mAP {a}", f"Sp mAP {b}"]].dropna()
            matrix.loc[a, b] = A.kendall_tau_b(both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy()) if len(both) > 2 else math.nan
            counts.loc[a, b] = len(both)
    tau = matrix.reset_index().rename(columns={"index": "variant"})
    return (Table("mask_dependence", "Mask dependence: spurious mAP per masked variant", per_variant, _md(per_variant),
                  "Model cells of each dataset (every model and seed) under each strategy and margin; the mask "
                  "detector predicts, without the query, the span whose features differ most from the rest."),
            Table("mask_agreement", "Kendall tau-b between the rankings of model cells under two variants", tau,
                  _md(tau), "Over the model cells that have both variants (recontext is the opposite test: the moment "
                  "is kept and the context replaced, scored against the moved windows)."), matrix)


def score_against_table(results: Results, negative: str, positives: list[str]) -> Table:
    split = results.experiment["split"]
    masks = {d["name"]: d["masks"] for d in results.datasets()}
    rows = []

    def separation(m0: np.ndarray, s0: np.ndarray, m1: np.ndarray, s1: np.ndarray) -> np.ndarray:
        return m1.mean(1) / s1.mean(1) - m0.mean(1) / s0.mean(1)

    for positive in positives:
        _, floor = _floor(results, positive, split)
        floor_map = 100 * floor.mean() if floor is not None else math.nan
        gain = {}  # standard mAP on the control above its best blind baseline, per model
        for model in (m for m in results.models(negative) if m in results.models(positive)):
            keys = [k for k in results.model_cells(positive, model)["key"] if results.has(k, split)]
            gain[model] = float(np.mean([100 * results.column(k, split, "ap").mean() for k in keys])) - floor_map
        # the models that learned the control (5 points above the best blind baseline), else all
        models = [m for m, g in gain.items() if g >= LEARNED] or list(gain)
        above = float(np.mean([gain[m] for m in models])) if models else math.nan
        for variant in [v for v in masks[negative] if v in masks[positive] and not v.startswith("recontext")]:
            evaluation = f"masked:{variant}"
            for measure, column in MEASURES.items():
                estimates = {}
                for dataset in (negative, positive):
                    keys = [k for m in models for k in results.model_cells(dataset, m)["key"]
                            if results.has(k, evaluation)]
                    if not keys:
                        break
                    masked = np.mean([results.column(k, evaluation, column) for k in keys], axis=0)
                    base_column = "in_mask" if column == "in_mask" else "ap"
                    standard = np.mean([results.column(k, split, base_column) for k in keys], axis=0)
                    estimates[dataset] = (masked, standard)
                if len(estimates) < 2:
                    continue
                sep = A.boot_queries(separation, [list(estimates[negative]), list(estimates[positive])],
                                     offset=A.offset_of("separation", positive, variant, measure))
                (m0, s0), (m1, s1) = estimates[negative], estimates[positive]
                rows.append({"control": results.label(positive), "variant": variant, "measure": measure,
                             "models": ", ".join(results.title(m) for m in models),
                             "control mAP above blind floor": above,
                             "no cue: masked %": 100 * m0.mean(), "no cue: retained": m0.mean() / s0.mean(),
                             "control: masked %": 100 * m1.mean(), "control: retained": m1.mean() / s1.mean(),
                             "separation [95% CI]": sep.text(2), "separation": sep.value, "low": sep.low, "high": sep.high})
    frame = pd.DataFrame(rows)
    return Table("score_against", "What to score against: separation of each positive control from the no-cue control",
                 frame, _md(frame.drop(columns=["separation", "low", "high"]) if not frame.empty else frame),
                 "Retained = the measure on the masked variant / the same measure unmasked (mAP against the original "
                 "windows; for the centre-in-mask rate, the centre-in-window rate). Separation = retained on the "
                 "positive control minus retained with no cue (the same models, their cells pooled per query: the "
                 f"models whose standard mAP on the control is at least {LEARNED:g} points above its best blind "
                 "baseline, i.e. that learned what it offers; all of them when none did). A valid measure separates "
                 "them widely. Intervals bootstrap the queries of both datasets.")


def claim_table(results: Results, dataset: str) -> Table:
    split = results.experiment["split"]
    pairs = []
    for model in results.models(dataset):
        base = model.split("+")[0]
        partner = "qd_detr" if model == "tddetr" else (base if "+" in model else None)
        if partner and partner in results.models(dataset):
            pairs.append((partner, model))
    rows = []
    for index, (base, variant) in enumerate(pairs):
        record: dict[str, Any] = {"base": results.title(base), "with TD-DETR": results.title(variant)}
        base_cells = results.model_cells(dataset, base).set_index("seed")["key"]
        variant_cells = results.model_cells(dataset, variant).set_index("seed")["key"]
        seeds = sorted(set(base_cells.index) & set(variant_cells.index))
        record["seeds"] = len(seeds)

        def seed_values(keys: pd.Series, evaluation: str, seeds: list[int] = seeds) -> list[float]:
            return [100 * results.column(keys[s], evaluation, "ap").mean() for s in seeds]

        for label, evaluation in (("mAP", split), ("Sp mAP", PAPER)):
            b, v = seed_values(base_cells, evaluation), seed_values(variant_cells, evaluation)
            record[f"{label} base"] = _pm(b)
            record[f"{label} w/"] = _pm(v)
            record[f"Δ {label} [t 95% CI]"] = A.t_interval([y - x for x, y in zip(b, v, strict=True)]).text(2)
        b_ret = [s / m for s, m in zip(seed_values(base_cells, PAPER), seed_values(base_cells, split), strict=True)]
        v_ret = [s / m for s, m in zip(seed_values(variant_cells, PAPER), seed_values(variant_cells, split), strict=True)]
        record["Δ retained [t 95% CI]"] = A.t_interval([y - x for x, y in zip(b_ret, v_ret, strict=True)]).text(3)
        masked_b = np.mean([results.column(base_cells[s], PAPER, "ap") for s in seeds], axis=0)
        masked_v = np.mean([results.column(variant_cells[s], PAPER, "ap") for s in seeds], axis=0)
        paired = A.boot_queries(lambda a, b: 100 * (b.mean(1) - a.mean(1)), [[masked_b, masked_v]], offset=200 + index)
        record["Δ Sp mAP [query bootstrap]"] = paired.text(2)
        rows.append(record)
    frame = pd.DataFrame(rows)
    return Table("claim", f"The paper's claim on {results.label(dataset)}: w/ TD-DETR against the base model", frame,
                 _md(frame), "Δ = with minus without, paired by seed; the t interval is over the seeds (wide with "
                 "three), the query bootstrap pairs the seed-averaged per-query AP of the two models. Retained = "
                 "spurious mAP / standard mAP, the comparison at matched standard mAP.")


# --- plots -------------------------------------------------------------------------------------------
def _png(draw: Callable[[Any], None], size: tuple[float, float]) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with plt.style.context("default"):
        fig = plt.figure(figsize=size)
        try:
            draw(fig)
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=PNG_DPI,
                        metadata={"Software": None, "Source": f"mrbench experiment report, matplotlib {matplotlib.__version__}"})
        finally:
            plt.close(fig)
    return buffer.getvalue()


def sensitivity_png(results: Results, raw: pd.DataFrame) -> bytes:
    series = flank_series(raw)

    def draw(fig: Any) -> None:
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.3]})
        for index, model in enumerate(results.models()):
            part = raw[(raw["model"] == model) & raw["dataset"].isin(series)]
            part = part.set_index("dataset").reindex(series).dropna(subset=["Sp mAP"])
            if part.empty:
                continue
            x = [raw[raw["dataset"] == d]["synth"].iloc[0].get("rho_flank", 0.9) for d in part.index]
            err = [part["Sp mAP"] - part["Sp low"], part["Sp high"] - part["Sp mAP"]]
            left.errorbar(x, part["Sp mAP"], yerr=err, marker="o", capsize=3, color=f"C{index}",
                          label=results.title(model))
        for name, style, label in (("blind floor", "k--", "blind floor"), ("mask_detector", "k:", "mask detector")):
            part = raw[(raw["model"] == name) & raw["dataset"].isin(series)].set_index("dataset").reindex(series)
            x = [raw[raw["dataset"] == d]["synth"].iloc[0].get("rho_flank", 0.9) for d in series]
            left.plot(x, part["Sp mAP"], style, marker="_", markersize=14, label=label)
        left.set_xlabel("flank cue strength (train/val)")
        left.set_ylabel("spurious mAP (noise, 3 s, original windows)")
        left.set_title("Sensitivity to a cue that survives the mask")
        left.legend(fontsize=7)
        models = results.models()
        datasets = [d["name"] for d in results.datasets()]
        width = 0.8 / max(1, len(models))
        for index, model in enumerate(models):
            part = raw[raw["model"] == model].set_index("dataset").reindex(datasets)
            xs = np.arange(len(datasets)) + index * width
            err = [part["retained"] - part["retained low"], part["retained high"] - part["retained"]]
            right.bar(xs, part["retained"], width, yerr=err, capsize=2, color=f"C{index}", label=results.title(model))
        right.axhline(1.0, color="k", lw=0.8)
        right.set_xticks(np.arange(len(datasets)) + 0.4 - width / 2)
        right.set_xticklabels([results.label(d) for d in datasets], rotation=30, ha="right", fontsize=7)
        right.set_ylabel("retained = spurious mAP / standard mAP")
        right.set_title("Share of the standard mAP kept under the mask")

    return _png(draw, (12.0, 4.8))


def mask_png(results: Results, per_variant: pd.DataFrame, matrix: pd.DataFrame) -> bytes:
    def draw(fig: Any) -> None:
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.5, 1.0]})
        swept = per_variant.groupby("dataset", sort=False)["variant"].transform("size") > 5
        shown = per_variant[swept]
        labels = list(dict.fromkeys(shown["dataset"]))
        variants = sorted(dict.fromkeys(shown["variant"]), key=variant_order)
        width = 0.8 / max(1, len(labels))
        for index, label in enumerate(labels):
            part = shown[shown["dataset"] == label].set_index("variant").reindex(variants)
            xs = np.arange(len(variants)) + index * width
            left.bar(xs, part["Sp mAP (mean over cells)"], width, color=f"C{index}", label=f"models: {label}")
            left.plot(xs, part["mask detector Sp mAP"], "k_", markersize=8)
        left.plot([], [], "k_", label="mask detector")
        left.set_xticks(np.arange(len(variants)) + 0.4 - width / 2)
        left.set_xticklabels(variants, rotation=45, ha="right", fontsize=7)
        left.set_ylabel("spurious mAP")
        left.set_title("Spurious mAP per strategy and margin (datasets with every margin)")
        left.legend(fontsize=6)
        image = right.imshow(matrix.to_numpy(dtype=float), vmin=-1, vmax=1, cmap="coolwarm")
        right.set_xticks(range(len(matrix.columns)))
        right.set_xticklabels(matrix.columns, rotation=90, fontsize=6)
        right.set_yticks(range(len(matrix.index)))
        right.set_yticklabels(matrix.index, fontsize=6)
        right.set_title("Kendall tau-b of model-cell rankings")
        fig.colorbar(image, ax=right, fraction=0.046)

    return _png(draw, (12.0, 5.0))


def controls_png(frame: pd.DataFrame) -> bytes:
    """Retained share of each positive control (its learned models) beside the no-cue control's, per
    masked variant, for the three measures: the validity of each protocol at a glance."""
    def draw(fig: Any) -> None:
        controls = list(dict.fromkeys(frame["control"]))
        axes = np.atleast_1d(fig.subplots(len(controls), 1, sharex=True, squeeze=False)[:, 0])
        for ax, control in zip(axes, controls, strict=True):
            part = frame[frame["control"] == control]
            variants = sorted(dict.fromkeys(part["variant"]), key=variant_order)
            measures = list(dict.fromkeys(part["measure"]))
            width = 0.8 / (2 * len(measures))
            for index, measure in enumerate(measures):
                rows = part[part["measure"] == measure].set_index("variant").reindex(variants)
                xs = np.arange(len(variants)) + 2 * index * width
                ax.bar(xs, rows["control: retained"], width, color=f"C{index}", label=f"{measure}: control")
                ax.bar(xs + width, rows["no cue: retained"], width, color=f"C{index}", alpha=0.35,
                       label=f"{measure}: no cue")
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set_ylabel("retained")
            ax.set_title(f"{control} (models: {part['models'].iloc[0]}) against no cue", fontsize=9)
            ax.set_xticks(np.arange(len(variants)) + 0.4 - width / 2)
            ax.set_xticklabels(variants, rotation=45, ha="right", fontsize=8)
        axes[0].legend(fontsize=6, ncol=3)

    return _png(draw, (11.0, 3.2 * max(1, frame["control"].nunique())))


def predictive_png(results: Results, points: pd.DataFrame) -> bytes:
    def draw(fig: Any) -> None:
        axes = fig.subplots(1, 2)
        for ax, column, label in ((axes[0], "Sp mAP noise-m3", "spurious mAP (paper protocol)"),
                                  (axes[1], "retained noise-m3", "retained = spurious / standard mAP")):
            for index, dataset in enumerate(dict.fromkeys(points["dataset"])):
                part = points[points["dataset"] == dataset]
                ax.scatter(part[column], part["drop"], s=18, color=f"C{index % 10}", label=results.label(dataset))
            ax.set_xlabel(label)
            ax.set_ylabel("mAP drop to the split without cues")
        axes[0].legend(fontsize=6)
        axes[0].set_title("Does the spurious score predict the harm?")

    return _png(draw, (11.0, 4.5))


def _parquet(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def build_report(folder: str | Path, out: str | Path) -> list[Path]:
    """Write the report of the run (or committed results) in ``folder`` to ``out``; returns the files."""
    results = load_results(folder)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables: list[Table] = [training_table(results)]
    negative = find_dataset(results, is_no_cue)
    default = find_dataset(results, is_default)
    if negative:
        tables.append(specificity_table(results, negative))
    sensitivity, raw = sensitivity_table(results)
    tables.append(sensitivity)
    predictive, points = predictive_table(results)
    tables.append(predictive)
    per_variant, agreement, matrix = mask_dependence_tables(results, points)
    tables += [per_variant, agreement]
    positives = [d["name"] for d in results.datasets() if is_positive_control(d["synth"])]
    if negative and positives:
        tables.append(score_against_table(results, negative, positives))
    if default:
        tables.append(claim_table(results, default))
    written = []
    for table in tables:
        for suffix, data in ((".md", f"# {table.title}\n\n{table.markdown}\n\n{table.note}\n".encode()),
                             (".csv", table.frame.to_csv(index=False, float_format="%.4f", lineterminator="\n").encode()),
                             (".parquet", _parquet(table.frame))):
            atomic_write_bytes(out / f"{table.name}{suffix}", data)
            written.append(out / f"{table.name}{suffix}")
    atomic_write_bytes(out / "cells.parquet", _parquet(points))
    written.append(out / "cells.parquet")
    plots = [("sensitivity.png", sensitivity_png(results, raw)),
             ("mask_dependence.png", mask_png(results, per_variant.frame, matrix)),
             ("predictive.png", predictive_png(results, points))]
    against = next((t for t in tables if t.name == "score_against"), None)
    if against is not None and not against.frame.empty:
        plots.append(("controls.png", controls_png(against.frame)))
    for name, data in plots:
        atomic_write_bytes(out / name, data)
        written.append(out / name)
    page = render_findings(results, {t.name: t for t in tables}, raw, matrix)
    atomic_write_text(out / "README.md", page)
    written.append(out / "README.md")
    return written

