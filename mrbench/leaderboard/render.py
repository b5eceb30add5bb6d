"""Render leaderboards: Markdown, CSV, Parquet, a standalone HTML page and PNG plots.

Everything written here is deterministic for the same input: rows are sorted, floats use fixed
formats, the HTML embeds its plots and script (no external assets), and PNG files carry no
timestamp or software version (matplotlib Agg, the "default" style, fixed size and dpi).

Per (dataset, split), under ``<out>/<dataset>/<split>/``:
``leaderboard.md``, ``leaderboard.csv`` (aggregates), ``results.parquet`` (long form: one row per
entry, seed and metric), ``leaderboard.html``, ``standard_vs_spurious.png`` and ``bars.png``.
Plus ``<out>/README.md`` (every table and plot) and ``<out>/reported.{md,csv}``.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from pathlib import Path
from urllib.parse import quote

from mrbench.io import atomic_write_bytes, atomic_write_text, ensure_inside
from mrbench.leaderboard.table import (
    Group,
    Row,
    base_of,
    columns_for,
    delta,
    delta_columns,
    has_spurious,
    is_strict_https_url,
    mean_of,
    sorted_rows,
)
from mrbench.scoring.keys import MR_MAP, SPURIOUS_MAP, Column

DASH = "—"
PNG_DPI = 100
#: The files a build writes, per (dataset, split) folder and at the top of ``--out``: the only
#: files it ever replaces or deletes.
GROUP_OUTPUTS = ("leaderboard.md", "leaderboard.csv", "results.parquet", "leaderboard.html",
                 "standard_vs_spurious.png", "bars.png")
TOP_OUTPUTS = ("README.md", "reported.md", "reported.csv")


def fmt_cell(stat: tuple[float | None, float | None, int] | None) -> str:
    """``mean ± std`` with 2 decimals; the mean alone for one seed; a dash when absent."""
    if stat is None or stat[0] is None:
        return DASH
    mean, std, _ = stat
    return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def fmt_delta(row: Row, group: Group, col: Column) -> str:
    """A strategy row's change against its model's row (signed, 2 decimals); empty for rows
    compared with nothing, a dash when a value is absent."""
    if base_of(row, group) is None:
        return ""
    value = delta(row, group, col.key)
    return DASH if value is None else f"{value:+.2f}"


def flags(row: Row) -> str:
    """Markers: ``T`` the test answers were used to select something, ``S`` self-scored, ``O``
    the checkpoint was selected on a split overlapping its training data."""
    marks = []
    if row.meta["test_answers_used"]:
        marks.append("T")
    if row.meta.get("selected_on_training_data"):
        marks.append("O")
    if row.meta["self_scored"]:
        marks.append("S")
    return "".join(marks)


def _seeds_text(row: Row) -> str:
    return str(len(row.meta["seeds"]))


def _header(col: Column) -> str:
    return f"{col.header} {'↑' if col.higher_better else '↓'}"


def _delta_key(col: Column) -> str:
    """The CSV column of a Δ column, e.g. ``Delta-MR-full-mAP``."""
    return f"Delta-{col.key}"


# --------------------------------------------------------------------------------------------
# Markdown


#: Line and paragraph breaks and other control characters: a table cell or heading is one line.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: Characters that would start Markdown syntax we never want from a submission: cell ends,
#: links and images, code spans (and the backslash, so that an escape cannot be undone).
_MD_SYNTAX = re.compile(r"([\\`|\[\]()])")


def md_text(text: object) -> str:
    """Untrusted text as literal, one-line Markdown: breaks become spaces, HTML special
    characters become entities, and ``\\ ` | [ ] ( )`` are backslash-escaped."""
    flat = _BREAKS.sub(" ", str(text))
    return _MD_SYNTAX.sub(r"\\\1", html.escape(flat, quote=False))


def md_code(text: object) -> str:
    """Untrusted text as a one-line code span (literal as it is), or as :func:`md_text` when it
    holds a backtick."""
    flat = _BREAKS.sub(" ", str(text))
    return md_text(flat) if "`" in flat else f"`{flat}`"


def md_link(text: object, url: object) -> str:
    """``[text](url)`` when ``url`` passes the strict https check, else the escaped text alone."""
    label = md_text(text)
    return f"[{label}]({url})" if is_strict_https_url(url) else label


def md_path(path: str) -> str:
    """A relative link target built from names (percent-encoded)."""
    return quote(path, safe="/")


def markdown_table(group: Group) -> str:
    """The leaderboard as a GitHub Markdown table (plus the legend)."""
    cols, deltas = columns_for(group), delta_columns(group)
    head = ["#", "Entry", "Type", "Seeds", *(_header(c) for c in [*cols, *deltas]), "Flags"]
    aligns = ["---:", "---", "---", "---:"] + ["---:"] * (len(cols) + len(deltas)) + ["---"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(aligns) + "|"]
    for rank, row in enumerate(sorted_rows(group), start=1):
        name = md_link(row.meta["name"], row.meta["paper"])
        cells = [str(rank), name, md_text(row.meta["kind"]), _seeds_text(row)]
        cells += [fmt_cell(row.stats.get(c.key)) for c in cols]
        cells += [fmt_delta(row, group, c) for c in deltas]
        cells.append(flags(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def legend(group: Group) -> str:
    spurious = any(c.spurious for c in columns_for(group))
    text = (
        "Values are x100 (Ratio: a plain ratio), mean ± sample std (ddof = 1) over seeds; one seed shows the value alone. "
        "↑ higher is better, ↓ lower is better. Flags: T = the split's answers were used to select "
        "something, S = self-scored against public ground truth."
    )
    if any(row.meta.get("selected_on_training_data") for row in group.rows):
        text += " O = the checkpoint was selected on a split sharing queries or videos with its training data."
    if spurious:
        text += (
            " Sp = spurious metrics: predictions on the masked variant (the moment's own clips "
            "replaced) scored against the original windows; a grounded model scores low. "
            "Ratio = mAP / Sp mAP per seed."
        )
    if delta_columns(group):
        text += (
            " Δ = the mean of a row trained with a strategy (w/ TD-DETR) minus the mean of the row "
            "of the same model without it, which it follows."
        )
    return text


def _md_title(group: Group) -> str:
    """Heading text of a group: the dataset's title and the split, both escaped."""
    return f"{md_text(group.dataset.title)} — split {md_code(group.split)}"


def markdown_page(group: Group) -> str:
    title = _md_title(group)
    parts = [
        f"# {title}\n",
        markdown_table(group),
        legend(group) + "\n",
    ]
    if has_spurious(group):
        parts.append("![standard vs spurious mAP](standard_vs_spurious.png)\n")
    parts.append("![mAP per entry](bars.png)\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# CSV and Parquet


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _csv_field(text: str) -> str:
    if text[:1] in ("=", "+", "-", "@") and not _is_number_text(text):  # no formula in a spreadsheet
        text = "'" + text
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_table(group: Group) -> str:
    """Aggregates: one line per entry; ``<key>_mean``, ``<key>_std``, ``<key>_n`` per column."""
    cols, deltas = columns_for(group), delta_columns(group)
    head = ["rank", "entry", "name", "kind", "model", "dataset", "split", "seeds", "flags"]
    for c in cols:
        head += [f"{c.key}_mean", f"{c.key}_std"]
    head += [_delta_key(c) for c in deltas]
    lines = [",".join(head)]
    for rank, row in enumerate(sorted_rows(group), start=1):
        m = row.meta
        cells = [str(rank), m["entry"], m["name"], m["kind"], m["model"], m["dataset"], m["split"],
                 " ".join(str(s) for s in m["seeds"]), flags(row)]
        for c in cols:
            mean, std, _ = row.stats.get(c.key, (None, None, 0))
            cells += [_num(mean), _num(std)]
        cells += [_num(delta(row, group, c.key)) for c in deltas]
        lines.append(",".join(_csv_field(x) for x in cells))
    return "\n".join(lines) + "\n"


def long_frame(group: Group):  # noqa: ANN201 (pandas is imported lazily)
    """Long-form results: one row per (entry, seed, metric), every metric of the report."""
    import pandas as pd

    records = []
    for row in sorted(group.rows, key=lambda r: r.meta["entry"]):
        m = row.meta
        for seed in m["seeds"]:
            for metric, value in sorted(row.per_seed[seed].items()):
                records.append({
                    "entry": m["entry"], "name": m["name"], "kind": m["kind"], "model": m["model"],
                    "dataset": m["dataset"], "split": m["split"], "seed": int(seed), "metric": metric,
                    "value": float("nan") if value is None else float(value),
                })
    return pd.DataFrame.from_records(
        records, columns=["entry", "name", "kind", "model", "dataset", "split", "seed", "metric", "value"]
    )


def write_parquet(group: Group, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(long_frame(group), preserve_index=False)
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd")
    atomic_write_bytes(path, buffer.getvalue().to_pybytes())


# --------------------------------------------------------------------------------------------
# plots


def plot_text(text: object) -> str:
    """Untrusted text for a matplotlib label: every ``$`` escaped, so it is never parsed as
    mathtext (which fails on unknown symbols and recurses without bound on nesting)."""
    return str(text).replace("$", r"\$")


def _plot_rows(group: Group, key: str) -> list[Row]:
    return [r for r in sorted_rows(group) if mean_of(r, key) is not None]


def _png_bytes(fig) -> bytes:  # noqa: ANN001
    """PNG bytes with no timestamp; the matplotlib release is recorded (it decides the pixels)."""
    import matplotlib

    buffer = io.BytesIO()
    metadata = {"Software": None, "Source": f"mrbench leaderboard, matplotlib {matplotlib.__version__}"}
    fig.savefig(buffer, format="png", dpi=PNG_DPI, metadata=metadata)
    return buffer.getvalue()


def scatter_png(group: Group) -> bytes | None:
    """Standard mAP (x) against spurious mAP (y) per entry, error bars = std over seeds; an arrow
    leads from a model to the same model with a strategy (w/ TD-DETR)."""
    rows = [r for r in _plot_rows(group, MR_MAP) if mean_of(r, SPURIOUS_MAP) is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(7.0, 5.0))
        top = 0.0
        for index, row in enumerate(rows):
            x, xs, _ = row.stats[MR_MAP]
            y, ys, _ = row.stats[SPURIOUS_MAP]
            marker = "s" if row.meta["kind"] == "baseline" else "o"
            ax.errorbar(x, y, xerr=xs or 0.0, yerr=ys or 0.0, fmt=marker, color=f"C{index % 10}",
                        capsize=3, label=plot_text(row.meta["name"]))
            top = max(top, x + (xs or 0.0), y + (ys or 0.0))
        for row in rows:  # an arrow from a model's point to its point w/ a strategy
            base = base_of(row, group)
            if base in rows:
                ax.annotate("", xy=(row.stats[MR_MAP][0], row.stats[SPURIOUS_MAP][0]),
                            xytext=(base.stats[MR_MAP][0], base.stats[SPURIOUS_MAP][0]),
                            arrowprops={"arrowstyle": "->", "color": "0.4", "linewidth": 0.8})
        limit = max(5.0, math.ceil(top * 1.1 / 5.0) * 5.0)
        ax.plot([0, limit], [0, limit], linestyle="--", color="0.6", linewidth=1,
                label="spurious = standard")
        ax.set_xlim(0, limit)
        ax.set_ylim(0, limit)
        ax.set_xlabel("standard mAP ↑")
        ax.set_ylabel("spurious mAP (masked moment) ↓")
        ax.set_title(plot_text(f"{group.dataset.name} / {group.split}: standard vs spurious mAP"))
        ax.grid(True, linewidth=0.5, alpha=0.5)
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        data = _png_bytes(fig)
        plt.close(fig)
    return data


def bars_png(group: Group) -> bytes | None:
    """Per-entry bars of standard mAP (and spurious mAP if present) with std error bars."""
    rows = _plot_rows(group, MR_MAP)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    series = [(MR_MAP, "standard mAP ↑")]
    if any(mean_of(r, SPURIOUS_MAP) is not None for r in rows):
        series.append((SPURIOUS_MAP, "spurious mAP ↓"))
    width = 0.8 / len(series)
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(rows) + 2.0), 4.5))
        for k, (key, label) in enumerate(series):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(rows))]
            means = [mean_of(r, key) or 0.0 for r in rows]
            stds = [r.stats.get(key, (None, None))[1] or 0.0 for r in rows]
            ax.bar(xs, means, width=width, yerr=stds, capsize=3, label=label, color=f"C{k}")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([plot_text(r.meta["name"]) for r in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("mAP (x100)")
        ax.set_title(plot_text(f"{group.dataset.name} / {group.split}: mean ± std over seeds"))
        ax.grid(True, axis="y", linewidth=0.5, alpha=0.5)
        ax.legend(fontsize=8)
        fig.tight_layout()
        data = _png_bytes(fig)
        plt.close(fig)
    return data


# --------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222}
div.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:14px}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right;white-space:nowrap}
th{cursor:pointer;background:#f4f4f4;user-select:none}
th.text,td.text{text-align:left}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
tr:hover td{background:#fafafa}
p.legend{max-width:60em;font-size:13px;color:#555}
img{max-width:100%;margin:1em 1em 0 0}
"""

_JS = """
(function(){
  var table=document.getElementById('leaderboard');
  var heads=table.tHead.rows[0].cells;
  function key(cell,numeric){
    if(!numeric){return cell.getAttribute('data-v')||cell.textContent;}
    var v=cell.getAttribute('data-v');
    return v===''||v===null?null:parseFloat(v);
  }
  function sortBy(index){
    var th=heads[index], numeric=th.classList.contains('num');
    var dir=th.getAttribute('aria-sort')==='descending'?'ascending':'descending';
    if(!numeric&&!th.hasAttribute('aria-sort')){dir='ascending';}
    for(var i=0;i<heads.length;i++){heads[i].removeAttribute('aria-sort');}
    th.setAttribute('aria-sort',dir);
    var body=table.tBodies[0], rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=key(a.cells[index],numeric), y=key(b.cells[index],numeric);
      if(x===null&&y===null){return 0;} if(x===null){return 1;} if(y===null){return -1;}
      var c=numeric?x-y:(x<y?-1:(x>y?1:0));
      return dir==='ascending'?c:-c;
    });
    rows.forEach(function(r){body.appendChild(r);});
  }
  for(var i=0;i<heads.length;i++){
    (function(i){heads[i].addEventListener('click',function(){sortBy(i);});})(i);
  }
})();
"""


def _td(text: str, value: str, numeric: bool) -> str:
    cls = "" if numeric else ' class="text"'
    return f'<td{cls} data-v="{html.escape(value)}">{html.escape(text)}</td>'


def html_page(group: Group, images: dict[str, bytes]) -> str:
    """A standalone page: the sortable table (click a header), the legend and the plots."""
    cols, deltas = columns_for(group), delta_columns(group)
    heads = [("#", True), ("Entry", False), ("Type", False), ("Seeds", True)]
    heads += [(_header(c), True) for c in [*cols, *deltas]] + [("Flags", False)]
    th = "".join(
        f'<th class="{"num" if numeric else "text"}" title="click to sort">{html.escape(label)}</th>'
        for label, numeric in heads
    )
    body = []
    for rank, row in enumerate(sorted_rows(group), start=1):
        cells = [
            _td(str(rank), str(rank), True),
            _td(row.meta["name"], row.meta["name"], False),
            _td(row.meta["kind"], row.meta["kind"], False),
            _td(_seeds_text(row), _seeds_text(row), True),
        ]
        for c in cols:
            stat = row.stats.get(c.key)
            mean = None if stat is None else stat[0]
            cells.append(_td(fmt_cell(stat), "" if mean is None else f"{mean:.6f}", True))
        for c in deltas:
            change = delta(row, group, c.key)
            cells.append(_td(fmt_delta(row, group, c), "" if change is None else f"{change:.6f}", True))
        cells.append(_td(flags(row), flags(row), False))
        body.append("<tr>" + "".join(cells) + "</tr>")
    title = f"{group.dataset.title} — {group.split}"
    figures = "".join(
        f'<img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        for name, data in images.items()
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<div class="scroll"><table id="leaderboard">\n<thead><tr>{th}</tr></thead>\n<tbody>\n'
        + "\n".join(body)
        + "\n</tbody>\n</table></div>\n"
        f'<p class="legend">{html.escape(legend(group))}</p>\n'
        f"<div>{figures}</div>\n"
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------------------------
# everything


def render_group(group: Group, out_dir: Path) -> list[Path]:
    """Write every file of one (dataset, split); returns the paths written."""
    target = out_dir / group.dataset.name / group.split
    ensure_inside(target, out_dir, "--out")  # a link planted in --out is not followed out of it
    written = []

    def put(name: str, data: str | bytes) -> None:
        path = target / name
        if isinstance(data, str):
            atomic_write_text(path, data)
        else:
            atomic_write_bytes(path, data)
        written.append(path)

    put("leaderboard.md", markdown_page(group))
    put("leaderboard.csv", csv_table(group))
    write_parquet(group, target / "results.parquet")
    written.append(target / "results.parquet")
    images = {}
    scatter = scatter_png(group)
    if scatter is not None:
        images["standard_vs_spurious.png"] = scatter
    bars = bars_png(group)
    if bars is not None:
        images["bars.png"] = bars
    for name, data in images.items():
        put(name, data)
    put("leaderboard.html", html_page(group, images))
    return written


def index_page(groups: list[Group], *, command: str = "mrbench leaderboard build", source: str = "`submissions/`",
               reported: bool = True) -> str:
    """``<out>/README.md``: every leaderboard with its plots, then (``reported``) the reported
    numbers; ``command`` and ``source`` say how it was generated."""
    from mrbench.leaderboard.reported import reported_markdown

    parts = [
        "# mrbench leaderboards\n",
        f"Generated by `{command}` from {source}; do not edit by hand.\n",
    ]
    for group in groups:
        base = md_path(f"{group.dataset.name}/{group.split}")
        parts.append(f"## {_md_title(group)}\n")
        parts.append(markdown_table(group))
        parts.append(legend(group) + "\n")
        links = [f"[HTML]({base}/leaderboard.html)", f"[CSV]({base}/leaderboard.csv)",
                 f"[Parquet]({base}/results.parquet)"]
        parts.append("Files: " + ", ".join(links) + "\n")
        if has_spurious(group):
            parts.append(f"![standard vs spurious mAP]({base}/standard_vs_spurious.png)\n")
        parts.append(f"![mAP per entry]({base}/bars.png)\n")
    if reported:
        parts.append(reported_markdown(level=2))
    return "\n".join(parts)


def render_all(groups: list[Group], out_dir: str | Path) -> list[Path]:
    """Write every group's files, ``README.md`` and the reported tables; returns the paths."""
    from mrbench.leaderboard.reported import reported_csv, reported_markdown

    out_dir = Path(out_dir)
    written: list[Path] = []
    for group in groups:
        written += render_group(group, out_dir)
    for name, text in (
        ("README.md", index_page(groups)),
        ("reported.md", reported_markdown(level=1)),
        ("reported.csv", reported_csv()),
    ):
        atomic_write_text(out_dir / name, text)
        written.append(out_dir / name)
    return sorted(written)
