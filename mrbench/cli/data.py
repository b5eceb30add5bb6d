"""``mrbench data``: download annotation files, describe datasets, pack features."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mrbench.cli.options import FiniteFloat, size_limit_option


@click.group()
def data() -> None:
    """Annotation files, dataset statistics and feature packing."""


@data.command()
@click.argument("name")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Target directory (default: $MRBENCH_DATA/NAME or ~/.cache/mrbench/data/NAME).")
@click.option("--from", "source", default=None,
              help="Base URL or local directory to fetch from instead of the official URLs.")
@click.option("--timeout", type=FiniteFloat(0, 3600, min_open=True), default=30.0, show_default=True,
              help="Network timeout (s).")
def download(name: str, dest: Path | None, source: str | None, timeout: float) -> None:
    """Fetch the annotation files of dataset NAME and verify their sha256 checksums."""
    from mrbench.data.catalog import get_spec
    from mrbench.data.download import download as run_download

    spec = get_spec(name)
    click.echo(f"{spec.title}: {len(spec.files)} file(s); license: {spec.license}")
    for result in run_download(name, dest, source, timeout=timeout, progress=True):
        click.echo(f"  {result.status:<11} {result.path}")


@data.command()
@click.argument("name_or_dir")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory holding the downloaded files of a catalog dataset.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the statistics as JSON.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also draw the start/end density of every annotated split to this PNG.")
@size_limit_option
def info(name_or_dir: str, root: Path | None, json_out: Path | None, plot_out: Path | None) -> None:
    """Split sizes, query/video counts, window length and position statistics.

    Position bias: per window, the normalised start and end, their correlation, the length as a
    share of the video and the JS divergence of each split's start/end histogram from train's.

    NAME_OR_DIR is a catalog name (qvhighlights, charades_sta, tacos, activitynet, charades_cd,
    activitynet_cd, qvhighlights_shift) or a mrbench dataset directory (e.g. the output of
    `mrbench synth` or `mrbench mask`).
    """
    from mrbench.data.catalog import CATALOG, dataset_splits, default_root, get_spec
    from mrbench.data.dataset import DatasetDir, is_dataset_dir
    from mrbench.data.stats import (
        format_position_stats,
        format_stats,
        plot_position_density,
        position_stats,
        split_stats,
    )
    from mrbench.errors import MrbenchError
    from mrbench.io import atomic_write_text, refuse_overwrite

    folder = is_dataset_dir(name_or_dir)
    if not folder and name_or_dir not in CATALOG:
        raise click.BadParameter(
            f"{name_or_dir!r} is neither a dataset directory nor one of {', '.join(CATALOG)}",
            param_hint="NAME_OR_DIR",
        )
    read_whole = [name_or_dir if folder else root or default_root(name_or_dir)]
    for option, output in (("--json", json_out), ("--plot", plot_out)):
        if output:
            refuse_overwrite(output, [], option, read_whole=read_whole)
    if json_out and plot_out and json_out.resolve() == plot_out.resolve():
        raise MrbenchError("--json and --plot name the same file; choose two files")
    if folder:
        meta = DatasetDir(name_or_dir).info()
        title = (f"{name_or_dir} ({meta.kind} dataset '{meta.name}', clip {meta.clip_len} s, "
                 f"video features {meta.video_features})")
    else:
        spec = get_spec(name_or_dir)
        feats = ", ".join(f"{k} {v}" for k, v in {**spec.video_features, **spec.text_features}.items())
        title = f"{spec.title}: clip {spec.clip_len} s, max clips {spec.max_clips}, features {feats}"
    splits = {s.split: s.load(require_windows=False if folder else None).records
              for s in dataset_splits(name_or_dir, root)}
    stats = {split: split_stats(records) for split, records in splits.items()}
    positions = position_stats(splits)
    click.echo(format_stats(title, stats))
    click.echo(format_position_stats(positions))
    if json_out:
        payload = {split: ({**s.as_dict(), "position": p.as_dict() if (p := positions[split]) else None}
                           if s else None) for split, s in stats.items()}
        atomic_write_text(json_out, json.dumps(payload, indent=2) + "\n")
    if plot_out:
        plot_position_density(splits, plot_out)
        click.echo(f"start/end density: {plot_out}")


@data.command()
@click.option("--features", "features_root", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Per-file feature root (<root>/<type>/<vid>.npz).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--annotations", "annotation_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pack only the videos and queries of these files (default: every file found).")
@click.option("--type", "types", multiple=True, help="Video feature types (default: all).")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default=None,
              help="Store in this dtype (default: as found).")
@size_limit_option
def pack(features_root: Path, out: Path, annotation_files: tuple[Path, ...], types: tuple[str, ...],
         dtype: str | None) -> None:
    """Pack per-video features into memory-mapped arrays plus a Parquet index."""
    from mrbench.data.features import TEXT_TYPE, FeatureStore, pack_features
    from mrbench.data.schema import read_annotations, require_plain_names
    from mrbench.errors import MrbenchError
    from mrbench.io import refuse_overwrite

    refuse_overwrite(out, annotation_files, "--out", read_whole=[features_root])
    store = FeatureStore(features_root)
    types = types or tuple(store.video_types())
    if not types:
        raise click.UsageError(f"no feature type directories under {features_root}")
    if annotation_files:
        files = [read_annotations(path) for path in annotation_files]
        for annotations in files:
            require_plain_names(annotations)
        records = [r for annotations in files for r in annotations]
        vids = list(dict.fromkeys(r.vid for r in records))
        qids: list[object] = list(dict.fromkeys(r.qid for r in records))
    else:
        vids = sorted({p.stem for p in (features_root / types[0]).iterdir() if p.suffix in (".npz", ".npy")})
        text_dir = features_root / TEXT_TYPE
        stems = sorted(p.stem for p in text_dir.glob("qid*")) if text_dir.is_dir() else []
        qids = [stem[3:] for stem in stems]
    if not vids:
        raise MrbenchError(f"nothing to pack: no videos in {', '.join(map(str, annotation_files)) or features_root}")
    pack_features(features_root, out, vids, qids, types, dtype=dtype, progress=True)
    click.echo(f"packed {len(vids)} videos ({', '.join(types)}) and {len(qids)} queries into {out}")
