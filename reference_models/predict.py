"""The predictor: a checkpoint + a dataset split -> community prediction JSONL.

Each line: ``qid, query, vid, pred_relevant_windows [[start, end, score], ...]`` (seconds, best
first, top 10; see :mod:`reference_models.core.postprocess`) and ``pred_saliency_scores`` (one
score per clip), ready for ``mrbench score``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from mrbench.errors import MrbenchError
from mrbench.io import write_jsonl
from mrbench.masking.variant import Variant
from reference_models import build_model
from reference_models.core.config import Config, apply_overrides
from reference_models.core.data import MomentDataset, ResidentSplit, collate, move
from reference_models.core.postprocess import to_windows
from reference_models.core.release import (
    error_line,
    is_release,
    model_from_release,
    read_checkpoint,
)


def resolve_device(name: str | None = None) -> torch.device:
    """``name``, else CUDA when available, else CPU."""
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise MrbenchError(f"device {name!r} requested but CUDA is not available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for the ``train.amp`` setting on ``device`` (None = full precision)."""
    if setting == "off" or device.type != "cuda":
        return None
    if setting in ("auto", "bf16"):
        return torch.bfloat16
    if setting == "fp16":
        return torch.float16
    raise MrbenchError(f"train.amp must be auto, bf16, fp16 or off, got {setting!r}")


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op when None."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def load_checkpoint(
    path: str | os.PathLike[str], device: torch.device, overrides: dict[str, Any] | None = None,
) -> tuple[torch.nn.Module, Config]:
    """The model of a checkpoint, in eval mode: one written by the trainer (``best.pt`` or
    ``last.pt``) or a release ``.ckpt`` of a registered release format
    (:mod:`reference_models.core.release`). ``overrides`` (``{"section.field": value}``) change
    its config before the model is built (e.g. ``train.span_scale`` or
    ``model.t2v_head_major_mask``). The file is read with ``weights_only=True``."""
    state = read_checkpoint(path)
    if is_release(state):
        try:
            model, config = model_from_release(state, overrides)
        except MrbenchError as exc:
            raise MrbenchError(f"{path}: {exc}") from None
        return model.to(device), config
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("model"), dict):
        raise MrbenchError(f"{path}: not an mrbench reference-model checkpoint nor a release checkpoint "
                           "(expected the keys 'config' and 'model', or 'model' and 'opt')")
    try:
        config = apply_overrides(Config.from_dict(state["config"]), overrides or {})
        model = build_model(config)
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise MrbenchError(f"{path}: does not load as an mrbench reference-model checkpoint ({error_line(exc)})") from None
    return model.to(device).eval(), config


def iterate_batches(
    dataset: MomentDataset, batch_size: int, device: torch.device, resident: ResidentSplit | None = None,
    dtype: torch.dtype | None = None,
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of the split in order, on ``device``."""
    for start in range(0, len(dataset), batch_size):
        rows = range(start, min(start + batch_size, len(dataset)))
        if resident is not None:
            yield resident.batch(torch.tensor(list(rows), dtype=torch.long))
        else:
            yield move(collate([dataset[i] for i in rows]), device, dtype)


@torch.no_grad()
def predict_split(
    model: torch.nn.Module, dataset: MomentDataset, device: torch.device, batch_size: int = 128,
    autocast: torch.dtype | None = None, nms_thresh: float = -1.0, resident: ResidentSplit | None = None,
    top_k: int = 10, span_scale: str = "clips", widen_short: bool = True, nms_sigma: float | None = None,
) -> list[dict]:
    """Prediction records (community format) for every query of ``dataset``
    (``span_scale``/``widen_short``/``nms_sigma``: :func:`~reference_models.core.postprocess.to_windows`;
    ``nms_sigma`` None: the model's ``config.train.nms_sigma``, 0 without a config). A model
    whose ``decode`` gives ``keep [B, K]`` has a variable number of windows per query (SnAG: the
    windows where ``keep``); one with ``round_to_clip = False`` keeps its windows' exact ends; one
    whose ``decode`` gives no ``saliency`` writes no ``pred_saliency_scores``."""
    if nms_sigma is None:
        config = getattr(model, "config", None)
        nms_sigma = float(getattr(getattr(config, "train", None), "nms_sigma", 0.0))
    round_to_clip = bool(getattr(model, "round_to_clip", True))
    was_training = model.training
    model.eval()
    records = []
    for batch in iterate_batches(dataset, batch_size, device, resident, None if resident else autocast):
        with autocast_context(device, autocast):
            decoded = model.decode(model(batch))
        scores = decoded["scores"].cpu().numpy()
        spans = decoded["spans"].cpu().numpy()
        saliency = decoded["saliency"].cpu().numpy() if "saliency" in decoded else None
        keep = decoded["keep"].cpu().numpy() if "keep" in decoded else None
        lengths = batch["video_mask"].sum(1).cpu().tolist()
        for row, index in enumerate(batch["index"].cpu().tolist()):
            record = dataset.records[index]
            n = int(lengths[row])
            kept = keep[row] if keep is not None else slice(None)
            out = {
                "qid": record.qid,
                "query": record.query,
                "vid": record.vid,
                "pred_relevant_windows": to_windows(
                    spans[row][kept], scores[row][kept], n, dataset.clip_len, record.duration, round_to_clip,
                    nms_thresh, top_k, span_scale, widen_short, nms_sigma,
                ),
            }
            if saliency is not None:
                out["pred_saliency_scores"] = [round(float(s), 4) for s in saliency[row, :n]]
            records.append(out)
    model.train(was_training)
    return records


def write_predictions(records: list[dict], out: str | os.PathLike[str]) -> None:
    """Atomically write prediction records as JSONL."""
    write_jsonl(out, records)


def predict(
    checkpoint: str | os.PathLike[str], data: str | os.PathLike[str], split: str, out: str | os.PathLike[str],
    variant: str | os.PathLike[str] | None = None, device: str | None = None, batch_size: int | None = None,
    overrides: dict[str, Any] | None = None, on_config: Callable[[Config], None] | None = None,
) -> list[Path]:
    """Predict ``split`` of ``data`` (or of the masked ``variant`` directory; a directory of
    ``seed*/`` variants gives one file per seed, ``<out stem>.seed<k>.jsonl``) with an mrbench or
    a release checkpoint (``overrides`` change its config); returns the files. ``on_config`` gets
    the checkpoint's config (model, strategies) once it is loaded."""
    torch_device = resolve_device(device)
    model, config = load_checkpoint(checkpoint, torch_device, overrides)
    if on_config is not None:
        on_config(config)
    autocast = amp_dtype(config.train.amp, torch_device)
    targets: list[tuple[Path, Path]] = []
    out = Path(out)
    if variant is None:
        targets.append((Path(data), out))
    else:
        variants = Variant.find(variant, marker="dataset.json")
        if variants[0].path == Path(variant):
            targets.append((variants[0].path, out))
        else:  # seed*/ variants, in natural seed order
            targets += [(v.path, out.with_name(f"{out.stem}.{v.path.name}{out.suffix or '.jsonl'}")) for v in variants]
    written = []
    for root, path in targets:
        dataset = MomentDataset(root, split, config.data)
        if dataset.video_dim != config.model.video_dim:
            raise MrbenchError(
                f"{root}: video features give {dataset.video_dim} dims, the checkpoint expects {config.model.video_dim}"
            )
        t = config.train
        records = predict_split(model, dataset, torch_device, batch_size or t.eval_batch_size, autocast, t.nms_thresh,
                                span_scale=t.span_scale, widen_short=t.widen_short)
        write_predictions(records, path)
        written.append(path)
    return written
