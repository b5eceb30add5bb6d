"""The trainer shared by every reference model.

* AdamW (``lr``, ``weight_decay``) on all parameters (or on the model's
  ``optimizer_groups(weight_decay)``, e.g. SnAG's no-decay groups), StepLR (x ``lr_gamma`` every
  ``lr_drop`` epochs; with ``warmup_epochs`` a per-step linear warm-up first), an optional weight
  EMA (``train.ema``: evaluated and saved as best), gradient clipping at ``grad_clip`` (max norm), ``train.amp`` (``off``: fp32 with TF32
  matmuls on CUDA, the dataset presets' default; ``auto``/``bf16``: bf16 autocast on CUDA; ``fp16``
  with a gradient scaler), optional ``torch.compile``.
* The training and selection splits must not share a query or a video (``train.allow_split_overlap``
  accepts it and flags the run: ``split_overlap`` in its best record, ``best.pt`` and log).
* Epoch order: a permutation from ``(seed, epoch)``; a global batch of ``batch_size`` queries is
  split into contiguous per-rank parts under DDP (``torchrun``; NCCL on CUDA, gloo on CPU). Label
  sampling uses a generator seeded by ``(seed, epoch, rank)``; dropout uses the global RNG. With
  ``train.queries_per_video`` a batch is ``batch_size`` groups of up to that many queries of one
  video (SnAG's video-centric batches, :func:`~reference_models.core.data.video_batches`).
* Data: per-query loading through a ``DataLoader`` or, with ``device_resident``, the whole split
  held on the device (:class:`~reference_models.core.data.ResidentSplit`).
* ``batch_augment(batch) -> batch`` runs on each training batch on the device before the
  forward pass (TD-DETR's VSDC plugs in here); a model may provide one via
  ``model.batch_augment(dataset, config)``, else the run's strategies do
  (:func:`reference_models.strategy_augment`, e.g. VSDC for ``--with tddetr``).
* After every ``eval_every`` epochs rank 0 predicts ``eval_split`` and scores it in-process with
  ``mrbench.scoring.score``; the best ``select_metric`` gives ``best.pt`` (never the test split
  unless named explicitly). ``last.pt`` is written atomically every epoch with the optimizer,
  scheduler, scaler, augmentation and RNG states, so ``resume=True`` continues exactly.
* ``log.jsonl``: one line per epoch (losses, lr, seconds, samples/s, eval metrics, eval seconds).
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from mrbench.errors import MrbenchError
from mrbench.io import atomic_write_bytes, atomic_write_text, jsonl_text, write_jsonl
from reference_models import build_model, strategy_augment, with_strategies
from reference_models.core.config import SECTIONS, Config
from reference_models.core.data import (
    MomentDataset,
    ResidentSplit,
    collate,
    move,
    sample_labels,
    video_batches,
)
from reference_models.core.vsdc import ANCHOR_KEY
from reference_models.predict import amp_dtype, autocast_context, predict_split, resolve_device

BatchAugment = Callable[[dict], dict]
#: with ``device_resident = "auto"`` on CPU, splits up to this size (float32, padded) stay in memory
RESIDENT_CPU_BYTES = 2 * 2**30


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[torch.Tensor]:
    """This rank's index tensors for one epoch: a permutation from ``(seed, epoch)`` cut into
    global batches of ``batch_size``, each split into ``world`` contiguous parts (a global batch
    smaller than ``world`` is dropped)."""
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    order = torch.randperm(n, generator=generator)
    out = []
    for start in range(0, n, batch_size):
        chunk = order[start : start + batch_size]
        if len(chunk) < world:
            continue
        out.append(torch.tensor_split(chunk, world)[rank])
    return out


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _save(obj: Any, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


#: settings a resumed run may change: they do not alter the training trajectory
RESUMABLE = frozenset({
    "train.epochs", "train.eval_every", "train.eval_batch_size", "train.progress", "train.num_workers",
    "train.threads", "train.device_resident", "train.compile",
})


def _resume_conflicts(saved: Config, current: Config) -> list[str]:
    """``section.key`` names whose values differ between a checkpoint's config and this run's,
    apart from :data:`RESUMABLE` (a resumed run must continue the same training)."""
    def flat(config: Config) -> dict[str, Any]:
        out = {"model_name": config.model_name, "strategies": config.strategies}
        for section in SECTIONS:
            out.update({f"{section}.{k}": v for k, v in getattr(config, section).__dict__.items()})
        return out

    old, new = flat(saved), flat(current)
    return [key for key in sorted(old.keys() | new.keys()) if key not in RESUMABLE and old.get(key) != new.get(key)]


class Trainer:
    """One training run (module docstring). ``run()`` returns the best evaluation record."""

    def __init__(
        self, config: Config, data: str | os.PathLike[str], out: str | os.PathLike[str],
        device: str | None = None, resume: bool = False, batch_augment: BatchAugment | None = None,
    ) -> None:
        self.config = config.copy()
        self.data_dir = Path(data)
        self.out = Path(out)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.distributed = self.world > 1
        if self.distributed:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
            self.device = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
            if use_cuda:
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if use_cuda else "gloo")
        else:
            self.device = resolve_device(device)
        self.main = self.rank == 0
        t = self.config.train
        if t.batch_size < self.world:
            raise MrbenchError(f"train.batch_size {t.batch_size} is smaller than the {self.world} processes")
        if t.threads > 0:
            torch.set_num_threads(t.threads)
        torch.manual_seed(t.seed)
        np.random.seed(t.seed % 2**32)
        random.seed(t.seed)
        if self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            torch.set_float32_matmul_precision("high")  # TF32 matmuls in fp32 (and for those left under AMP)

        self.train_set = MomentDataset(self.data_dir, t.train_split, self.config.data)
        if not self.train_set.has_labels:
            raise MrbenchError(f"{self.data_dir}: split {t.train_split!r} has queries without relevant_windows")
        splits = self.train_set.dir.splits()
        self.eval_set = None
        if t.eval_split and t.eval_split in splits:
            self.eval_set = MomentDataset(self.data_dir, t.eval_split, self.config.data)
            if not self.eval_set.has_labels:
                raise MrbenchError(f"{self.data_dir}: eval split {t.eval_split!r} has no labels to select a model on")
        elif t.eval_split and self.main:
            warnings.warn(f"{self.data_dir} has no split {t.eval_split!r}: no model selection, best.pt = the last epoch",
                          stacklevel=2)
        self.split_overlap = self._check_split_overlap()
        d = self.config.data
        d.video_types = list(self.train_set.video_types)
        d.clip_len = self.train_set.clip_len
        self.config.model.video_dim = self.train_set.video_dim
        self.config.model.text_dim = self.train_set.text_dim

        self.autocast = amp_dtype(t.amp, self.device)
        resident = t.device_resident == "on" or (t.device_resident == "auto" and (
            self.device.type == "cuda" or self._split_bytes() <= RESIDENT_CPU_BYTES))
        feature_dtype = self.autocast or torch.float32
        self.train_resident = ResidentSplit(self.train_set, self.device, feature_dtype) if resident else None
        self.eval_resident = (
            ResidentSplit(self.eval_set, self.device, feature_dtype) if resident and self.eval_set and self.main else None
        )

        self.model = build_model(self.config).to(self.device)
        self.module = self.model
        self.forward = self.model
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if t.compile:
            self.forward = torch.compile(self.forward)
        if batch_augment is None and hasattr(self.model, "batch_augment"):
            batch_augment = self.model.batch_augment(self.train_set, self.config)
        elif batch_augment is None:
            batch_augment = strategy_augment(self.train_set, self.config)
        self.batch_augment = batch_augment
        fast = {"fused": True} if self.device.type == "cuda" else {"foreach": True}
        groups = (self.model.optimizer_groups(t.weight_decay) if hasattr(self.model, "optimizer_groups")
                  else self.model.parameters())
        self.optimizer = torch.optim.AdamW(groups, lr=t.lr, weight_decay=t.weight_decay, **fast)
        self.scheduler = self._scheduler()
        # weight EMA (train.ema): evaluation, best.pt and predictions use the averaged copy
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False) if t.ema > 0 else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast == torch.float16)
        self.start_epoch = 0
        self.best: dict[str, Any] = {}
        if resume:
            self._resume()
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.json", json.dumps(self.config.to_dict(), indent=2) + "\n")

    def _check_split_overlap(self) -> dict[str, Any] | None:
        """Queries and videos shared by the training and selection splits: an error unless
        ``train.allow_split_overlap``, then a record that flags the run (``None`` when disjoint)."""
        if self.eval_set is None:
            return None
        t = self.config.train
        queries = {r.qid for r in self.train_set.records} & {r.qid for r in self.eval_set.records}
        videos = {r.vid for r in self.train_set.records} & {r.vid for r in self.eval_set.records}
        if not queries and not videos:
            return None
        what = f"{len(queries)} queries and {len(videos)} videos"
        if not t.allow_split_overlap:
            raise MrbenchError(
                f"training split {t.train_split!r} and selection split {t.eval_split!r} share {what}: the model "
                f"would be selected on training data; train on a split disjoint from {t.eval_split!r} (e.g. "
                "train.train_split=train_minus_val on Charades-STA) or set train.allow_split_overlap=true (the run "
                "is then flagged)")
        if self.main:
            warnings.warn(f"selection split {t.eval_split!r} shares {what} with training split {t.train_split!r} "
                          "(train.allow_split_overlap): this run is flagged", stacklevel=2)
        return {"train_split": t.train_split, "eval_split": t.eval_split, "queries": len(queries), "videos": len(videos)}

    def _split_bytes(self) -> int:
        """Upper bound of the padded float32 train + eval splits' video features."""
        clips = self.config.data.max_v_l or (self.train_set.info.max_clips or 10**6)
        queries = len(self.train_set) + (len(self.eval_set) if self.eval_set else 0)
        return queries * clips * self.train_set.video_dim * 4

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        """StepLR per epoch; with ``warmup_epochs``, per step: a linear ramp from 0 over the
        warm-up's steps (the release's ``LinearWarmupMultiStepLR``), then x ``lr_gamma`` every
        ``lr_drop`` epochs."""
        t = self.config.train
        if t.warmup_epochs <= 0:
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=t.lr_drop, gamma=t.lr_gamma)
        steps = max(1, len(self._epoch_indices(0)[0]))
        warm = t.warmup_epochs * steps

        def factor(step: int) -> float:
            ramp = min(1.0, step / (warm - 1)) if warm > 1 else 1.0
            return ramp * t.lr_gamma ** (max(0, step - warm) // (steps * t.lr_drop))

        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights that are evaluated and saved as best: the EMA copy when there is one."""
        return self.ema if self.ema is not None else self.module

    # ------------------------------------------------------------------------------------------
    def _state(self, epoch: int) -> dict[str, Any]:
        state = {
            "config": self.config.to_dict(),
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "best": self.best,
            "rng": _rng_state(self.device),
        }
        if hasattr(self.batch_augment, "state_dict"):
            state["augment"] = self.batch_augment.state_dict()
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if hasattr(self.module, "train_state"):  # e.g. SnAG's loss normaliser
            state["model_train_state"] = self.module.train_state()
        return state

    def _resume(self) -> None:
        path = self.out / "last.pt"
        if not path.is_file():
            raise MrbenchError(f"--resume: {path} does not exist")
        state = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=False)
        saved = Config.from_dict(state["config"])
        if "strategies" not in state["config"]:  # written before runs recorded them: the model's own
            saved.strategies = list(with_strategies(saved.model_name)[1])
        differing = _resume_conflicts(saved, self.config)
        if differing:
            raise MrbenchError(f"--resume: {path} was trained with other settings (differing: "
                               f"{', '.join(differing)}); only {', '.join(sorted(RESUMABLE))} may change")
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if "augment" in state and hasattr(self.batch_augment, "load_state_dict"):
            self.batch_augment.load_state_dict(state["augment"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if "model_train_state" in state:
            self.module.load_train_state(state["model_train_state"])
        self.start_epoch = int(state["epoch"]) + 1
        self.best = dict(state["best"])
        _set_rng_state(state["rng"], self.device)

    def _epoch_indices(self, epoch: int) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """This epoch's row indices per batch and, for an augmentation with ``slots`` (VSDC's
        release composition), which rows were drawn as anchor slots: the epoch is then ``2N``
        slots, slot ``i < N`` = query ``i`` as an anchor, slot ``N + i`` = query ``i`` as is.
        With ``train.queries_per_video``: video-centric batches (:func:`video_batches`)."""
        t = self.config.train
        n = len(self.train_set)
        slots = bool(getattr(self.batch_augment, "slots", False))
        if t.queries_per_video > 0:
            if slots:
                raise MrbenchError("train.queries_per_video (video-centric batches) cannot be combined with vsdc.slots")
            videos = [self.train_set.video_ids[r.vid] for r in self.train_set.records]
            return video_batches(videos, t.queries_per_video, t.batch_size, t.seed, epoch, self.rank, self.world), None
        indices = epoch_batches(2 * n if slots else n, t.batch_size, t.seed, epoch, self.rank, self.world)
        anchors = [i < n for i in indices] if slots else None
        return [i % n for i in indices], anchors

    def _batches(self, epoch: int) -> tuple[list[torch.Tensor], Any, list[torch.Tensor] | None]:
        """This epoch's row indices, batches and anchor rows (:meth:`_epoch_indices`)."""
        t = self.config.train
        indices, anchors = self._epoch_indices(epoch)
        if self.train_resident is not None:
            return indices, (self.train_resident.batch(i) for i in indices), anchors
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=[i.tolist() for i in indices], collate_fn=collate,
            num_workers=t.num_workers, pin_memory=self.device.type == "cuda",
        )
        return indices, (move(b, self.device) for b in loader), anchors

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch; returns the mean of each loss term over its steps (averaged over ranks)."""
        t = self.config.train
        self.model.train()
        generator = torch.Generator(device=self.device).manual_seed(t.seed * 100003 + epoch * 1009 + self.rank)
        indices, batches, anchors = self._batches(epoch)
        sums: dict[str, torch.Tensor] = {}
        samples = 0
        progress = None
        if self.main and t.progress:
            from tqdm import tqdm

            progress = tqdm(total=len(indices), desc=f"epoch {epoch}", leave=False, dynamic_ncols=True)
        for step, batch in enumerate(batches):
            batch = sample_labels(batch, self.config.data.max_windows, generator)
            if anchors is not None:
                batch[ANCHOR_KEY] = anchors[step].to(self.device)
            if self.batch_augment is not None:
                batch = self.batch_augment(batch)
            samples += int(batch["video"].shape[0])
            with autocast_context(self.device, self.autocast):
                outputs = self.forward(batch)
                losses = self.module.criterion(outputs, batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(losses["loss"]).backward()
            if t.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if t.warmup_epochs > 0:
                self.scheduler.step()
            if self.ema is not None:
                with torch.no_grad():
                    for p, averaged in zip(self.model.parameters(), self.ema.parameters(), strict=True):
                        averaged.lerp_(p.detach(), 1.0 - t.ema)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value.detach().float()
            if progress is not None:
                progress.update(1)
                if step % 20 == 0:
                    progress.set_postfix(loss=f"{float(losses['loss'].detach()):.3f}")
        if progress is not None:
            progress.close()
        steps = max(1, len(indices))
        keys = sorted(sums)
        values = torch.stack([sums[k] for k in keys]) / steps if keys else torch.zeros(0)
        if self.distributed:
            values = values.to(self.device)
            dist.all_reduce(values)
            values = values / self.world
        self.last_samples = samples * self.world
        return {k: float(v) for k, v in zip(keys, values.cpu().tolist(), strict=True)}

    def evaluate(self) -> tuple[dict[str, float], list[dict]]:
        """Score the eval split with mrbench's scorer: (brief metrics, prediction records)."""
        from mrbench.scoring import score

        assert self.eval_set is not None
        t = self.config.train
        records = predict_split(
            self.eval_model, self.eval_set, self.device, t.eval_batch_size, self.autocast, t.nms_thresh,
            self.eval_resident, span_scale=t.span_scale, widen_short=t.widen_short,
        )
        report = score(records, gt=self.eval_set.dir.annotation_path(self.eval_set.split), clip_len=self.eval_set.clip_len)
        return dict(report.brief), records

    def run(self) -> dict[str, Any]:
        """Train to ``train.epochs``; returns the best record (``epoch``, ``metric``, ``value``)."""
        t = self.config.train
        for epoch in range(self.start_epoch, t.epochs):
            start = time.perf_counter()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
            losses = self.train_epoch(epoch)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - start
            lr = self.optimizer.param_groups[0]["lr"]
            if t.warmup_epochs <= 0:
                self.scheduler.step()
            entry: dict[str, Any] = {
                "epoch": epoch, "lr": lr, "train": losses, "epoch_s": round(seconds, 3),
                "samples_per_s": round(self.last_samples / max(seconds, 1e-9), 1),
            }
            if self.device.type == "cuda":
                entry["peak_mem_gb"] = round(torch.cuda.max_memory_allocated(self.device) / 2**30, 3)
            if self.main:
                improved = False
                if self.eval_set is not None and ((epoch + 1) % t.eval_every == 0 or epoch + 1 == t.epochs):
                    eval_start = time.perf_counter()
                    metrics, records = self.evaluate()
                    entry["eval_s"] = round(time.perf_counter() - eval_start, 3)
                    entry["eval"] = metrics
                    if t.select_metric not in metrics:
                        raise MrbenchError(f"train.select_metric {t.select_metric!r} is not among {sorted(metrics)}")
                    value = metrics[t.select_metric]
                    if not self.best or value > self.best["value"]:
                        self.best = {"epoch": epoch, "metric": t.select_metric, "value": value}
                        if self.split_overlap:
                            self.best["split_overlap"] = self.split_overlap
                        improved = True
                        write_jsonl(self.out / f"best_{t.eval_split}_preds.jsonl", records)
                elif self.eval_set is None:
                    self.best = {"epoch": epoch, "metric": None, "value": None}
                    improved = True
                entry["best"] = self.best
                state = self._state(epoch)
                _save(state, self.out / "last.pt")
                if improved:
                    best_model = state["ema"] if self.ema is not None else state["model"]
                    _save({"config": state["config"], "model": best_model, "epoch": epoch, "best": self.best},
                          self.out / "best.pt")
                with open(self.out / "log.jsonl", "a", encoding="utf-8") as handle:
                    handle.write(jsonl_text([entry]))
            if self.distributed:
                dist.barrier()
        return self.best

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def train(
    config: Config, data: str | os.PathLike[str], out: str | os.PathLike[str], device: str | None = None,
    resume: bool = False, batch_augment: BatchAugment | None = None,
) -> dict[str, Any]:
    """Train ``config`` on dataset directory ``data`` into run directory ``out`` (module docstring)."""
    trainer = Trainer(config, data, out, device, resume, batch_augment)
    try:
        return trainer.run()
    finally:
        trainer.close()


def main() -> None:
    """``python -m reference_models.train MODEL DATA OUT [--preset P] [--with STRATEGY ...] [--set k=v ...]
    [--resume]`` (the entry point for ``torchrun``)."""
    import argparse

    from reference_models import resolve_config
    from reference_models.core.config import parse_overrides

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--preset", default="qvhighlights")
    parser.add_argument("--with", dest="strategies", action="append", default=[])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    config = resolve_config(args.model, args.preset, parse_overrides(args.overrides), args.strategies)
    best = train(config, args.data, args.out, args.device, args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"best": best}))


if __name__ == "__main__":
    main()
