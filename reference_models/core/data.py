"""Training and evaluation data over an mrbench dataset directory (``mrbench.data.dataset``).

Per query (:class:`MomentDataset`):

* video: each feature type cut to ``max_v_l`` clips and L2-normalised per clip separately, all
  types cut to their common length ``n`` and concatenated (``data.video_types`` order; default
  SlowFast, CLIP, then the other types of ``dataset.json`` by name), then the temporal endpoint feature ``[i / n, (i + 1) / n]``;
* text: ``last_hidden_state[:max_q_l]``, each token L2-normalised;
* windows: seconds / (``n * clip_len``), clamped to [0, 1], as (center, width);
* relevant clips: ``relevant_clip_ids`` (< n) when present, else every clip ``i`` with
  ``floor(s / clip_len) <= i < max(floor(s / clip_len) + 1, floor(e / clip_len))`` of some window;
* ``saliency_all``: the summed annotator scores on ``relevant_clip_ids`` (0..12 on QVHighlights),
  else 1 on the relevant clips; the *hard* pair (QVHighlights only) is the relevant clip with
  the highest summed score against the one with the lowest (first on ties).

The random parts of the labels are drawn per batch on the batch's device by
:func:`sample_labels`: at most ``max_windows`` windows (a random subset when there are more) and
the saliency pairs (hard pair + a random relevant vs a random non-relevant clip; without scores
two such random pairs; with no non-relevant clip the easy pair repeats the hard one, or the
relevant clip itself).

Training batches are random queries, or with :func:`video_batches` groups of queries of one
video (SnAG's video-centric batches). Two ways to batch a split, both yielding the batch dicts documented in ``docs/models.md``:
:func:`collate` over per-query items (a ``DataLoader``), or :class:`ResidentSplit`, the whole
split padded once and held on the device (bf16/fp16 video on CUDA), batches gathered by index.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from mrbench.data.dataset import DatasetDir
from mrbench.data.schema import Query
from mrbench.errors import MrbenchError
from reference_models.core.config import DataConfig

#: the community's concatenation order (SlowFast, then CLIP); other types follow by name
PREFERRED_ORDER = ("slowfast_features", "clip_features")


def default_video_types(available: dict[str, int]) -> list[str]:
    """Every video feature type of a dataset: SlowFast, CLIP, then the rest sorted by name."""
    first = [t for t in PREFERRED_ORDER if t in available]
    return first + sorted(t for t in available if t not in first)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class MomentDataset(torch.utils.data.Dataset):
    """One split of a dataset directory as per-query items (module docstring)."""

    def __init__(self, root: str | os.PathLike[str], split: str, config: DataConfig) -> None:
        self.dir = DatasetDir(root)
        self.info = self.dir.info()
        self.split = split
        self.config = config
        self.records: list[Query] = list(self.dir.load(split, require_windows=False))
        if not self.records:
            raise MrbenchError(f"{self.dir.annotation_path(split)}: no queries")
        self.store = self.dir.store()
        types = list(config.video_types) or default_video_types(self.info.video_features)
        missing = [t for t in types if t not in self.info.video_features]
        if missing:
            raise MrbenchError(f"{self.dir.root}: unknown video feature types {missing} (have {sorted(self.info.video_features)})")
        self.video_types = types
        self.clip_len = float(config.clip_len or self.info.clip_len)
        self.has_labels = all(r.windows for r in self.records)
        vids = sorted({r.vid for r in self.records})
        self.video_ids = {vid: i for i, vid in enumerate(vids)}
        dims = [int(self.info.video_features[t]) for t in types]
        self.source_slices = [(sum(dims[:i]), sum(dims[: i + 1])) for i in range(len(dims))]
        self.video_dim = sum(dims) + (2 if config.tef else 0)
        text_dims = [int(d) for d in self.info.text_features.values() if d]
        self.text_dim = text_dims[0] if text_dims else int(self[0]["text"].shape[1])

    def __len__(self) -> int:
        return len(self.records)

    def load_video(self, vid: str) -> np.ndarray:
        """``[n, D]`` normalised, concatenated features of ``vid`` (no TEF)."""
        cap = self.config.max_v_l or None
        parts = [a[:cap].astype(np.float32) for a in self.store.load_video(vid, self.video_types).values()]
        if self.config.normalize_video:
            parts = [l2_normalize(p) for p in parts]
        n = min(len(p) for p in parts)
        if n == 0:
            raise MrbenchError(f"{self.dir.root}: video {vid!r} has no clips")
        return np.concatenate([p[:n] for p in parts], axis=1)

    def load_text(self, qid: object) -> np.ndarray:
        tokens = self.store.load_text(qid)["last_hidden_state"][: self.config.max_q_l].astype(np.float32)
        if len(tokens) == 0:
            raise MrbenchError(f"{self.dir.root}: query {qid!r} has no text tokens")
        return l2_normalize(tokens) if self.config.normalize_text else tokens

    def labels(self, record: Query, n: int) -> dict[str, np.ndarray]:
        """Static labels of one query over ``n`` clips (module docstring)."""
        length = n * self.clip_len
        windows = np.asarray(record.windows, dtype=np.float32).reshape(-1, 2) / length
        windows = np.clip(windows, 0.0, 1.0)
        cxw = np.stack([windows.mean(1), windows[:, 1] - windows[:, 0]], axis=1)
        relevant = np.zeros(n, dtype=bool)
        scores = np.zeros(n, dtype=np.float32)
        hard = np.array([-1, -1], dtype=np.int64)
        if record.relevant_clip_ids and record.saliency_scores:
            ids = np.minimum(np.asarray(record.relevant_clip_ids, dtype=np.int64), n - 1)
            sums = np.asarray(record.saliency_scores, dtype=np.float32).reshape(len(ids), -1).sum(1)
            relevant[ids] = True
            scores[ids] = sums
            hard = np.array([ids[int(np.argmax(sums))], ids[int(np.argmin(sums))]], dtype=np.int64)
        else:
            for start, end in np.asarray(record.windows, dtype=np.float64).reshape(-1, 2):
                first = min(int(math.floor(start / self.clip_len)), n - 1)
                last = max(first + 1, min(int(math.floor(end / self.clip_len)), n))
                relevant[first:last] = True
            scores[relevant] = 1.0
        return {"windows": cxw.astype(np.float32), "relevant": relevant, "saliency_all": scores, "hard_pair": hard}

    def __getitem__(self, index: int) -> dict[str, np.ndarray | int | float]:
        return self.item(index, self.load_video(self.records[index].vid))

    def item(self, index: int, video: np.ndarray) -> dict[str, np.ndarray | int | float]:
        """Query ``index`` with its loaded video features ``[n, D]`` (TEF added here)."""
        record = self.records[index]
        n = len(video)
        if self.config.tef:
            start = np.arange(n, dtype=np.float32) / n
            video = np.concatenate([video, np.stack([start, start + 1.0 / n], axis=1)], axis=1)
        item: dict[str, np.ndarray | int | float] = {
            "video": video,
            "text": self.load_text(record.qid),
            "index": index,
            "video_id": self.video_ids[record.vid],
            "clip_len": self.clip_len,
        }
        if record.windows:
            item.update(self.labels(record, n))
        return item

    def load_all(self, threads: int = 8) -> list[dict]:
        """Every item of the split; each video is read once (``threads`` reader threads)."""
        vids = sorted({r.vid for r in self.records})
        with ThreadPoolExecutor(max(1, threads)) as pool:
            videos = dict(zip(vids, pool.map(self.load_video, vids), strict=True))
            return list(pool.map(lambda i: self.item(i, videos[self.records[i].vid]), range(len(self))))


def _pad(arrays: Sequence[np.ndarray], value: float = 0.0, length: int | None = None) -> torch.Tensor:
    length = length or max(len(a) for a in arrays)
    first = np.asarray(arrays[0])
    out = np.full((len(arrays), length, *first.shape[1:]), value, dtype=first.dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return torch.from_numpy(out)


def collate(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Pad per-query items into a batch (``docs/models.md``), labels still unsampled
    (``windows``/``window_mask``/``hard_pair``; see :func:`sample_labels`)."""
    lengths = [len(it["video"]) for it in items]
    tokens = [len(it["text"]) for it in items]
    batch = {
        "video": _pad([it["video"] for it in items]),
        "video_mask": _pad([np.ones(n, dtype=bool) for n in lengths], False),
        "text": _pad([it["text"] for it in items]),
        "text_mask": _pad([np.ones(n, dtype=bool) for n in tokens], False),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "video_id": torch.tensor([it["video_id"] for it in items], dtype=torch.long),
        "clip_len": torch.tensor([it["clip_len"] for it in items], dtype=torch.float32),
    }
    if all("windows" in it for it in items):
        batch["windows"] = _pad([it["windows"] for it in items])
        batch["window_mask"] = _pad([np.ones(len(it["windows"]), dtype=bool) for it in items], False)
        batch["relevant"] = _pad([it["relevant"] for it in items], False)
        batch["saliency_all"] = _pad([it["saliency_all"] for it in items])
        batch["hard_pair"] = torch.from_numpy(np.stack([it["hard_pair"] for it in items]))
    return batch


def _random_choice(allowed: torch.Tensor, generator: torch.Generator, count: int = 1) -> torch.Tensor:
    """``[B, count]`` indices drawn uniformly (independently) from the True positions of each row
    of ``allowed [B, L]`` (rows without any True give index 0)."""
    keys = torch.rand((count, *allowed.shape), generator=generator, device=allowed.device)
    keys = keys.masked_fill(~allowed.unsqueeze(0), -1.0)
    return keys.argmax(-1).transpose(0, 1)


def sample_labels(batch: dict[str, torch.Tensor], max_windows: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Add ``spans``/``span_mask`` and ``saliency_pos``/``saliency_neg`` to a collated batch
    (module docstring); the batch's other keys pass through."""
    if "windows" not in batch:
        return batch
    out = {k: v for k, v in batch.items() if k not in ("windows", "window_mask", "hard_pair")}
    windows, window_mask = batch["windows"], batch["window_mask"]
    if windows.shape[1] > max_windows:
        keys = torch.rand(window_mask.shape, generator=generator, device=windows.device)
        keys = keys.masked_fill(~window_mask, -1.0)
        order = keys.topk(max_windows, dim=1).indices  # real windows first (their keys are >= 0)
        window_mask = window_mask.gather(1, order)
        windows = windows.gather(1, order.unsqueeze(-1).expand(-1, -1, 2))
    out["spans"] = windows.float()
    out["span_mask"] = window_mask
    relevant = batch["relevant"] & batch["video_mask"]
    outside = batch["video_mask"] & ~relevant
    has_outside = outside.any(1, keepdim=True)
    hard = batch["hard_pair"]
    has_hard = (hard[:, :1] >= 0)
    pos = _random_choice(relevant, generator, 2)
    neg = torch.where(has_outside, _random_choice(outside, generator, 2), pos)
    # QVHighlights-style: [hard ; easy]; otherwise two random pairs
    hard_pos = torch.where(has_hard, hard[:, :1], pos[:, 1:])
    hard_neg = torch.where(has_hard, hard[:, 1:], neg[:, 1:])
    easy_neg = torch.where(has_outside, neg[:, :1], hard_neg)
    easy_pos = torch.where(has_outside, pos[:, :1], hard_pos)
    out["saliency_pos"] = torch.cat([hard_pos, easy_pos], 1)
    out["saliency_neg"] = torch.cat([hard_neg, easy_neg], 1)
    return out


def video_batches(videos: Sequence[int], per_video: int, batch_size: int, seed: int, epoch: int, rank: int = 0,
                  world: int = 1) -> list[torch.Tensor]:
    """Video-centric batches (SnAG): this rank's row indices per batch for queries whose videos
    are ``videos[i]``. Each epoch, with a generator seeded by ``(seed, epoch)``, each video's
    queries are shuffled and cut into groups of at most ``per_video``, the groups are shuffled,
    and a global batch holds ``batch_size`` groups (their rows one group after the other), split
    by groups into ``world`` contiguous parts (a global batch of fewer groups is dropped)."""
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    by_video: dict[int, list[int]] = {}
    for row, video in enumerate(videos):
        by_video.setdefault(int(video), []).append(row)
    groups = []
    for video in sorted(by_video):
        rows = torch.tensor(by_video[video])[torch.randperm(len(by_video[video]), generator=generator)]
        groups += list(torch.split(rows, per_video))
    order = torch.randperm(len(groups), generator=generator).tolist()
    out = []
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        if len(chunk) < world:
            continue
        mine = [int(i) for i in torch.tensor_split(torch.tensor(chunk), world)[rank]]
        out.append(torch.cat([groups[i] for i in mine]))
    return out


def move(batch: dict[str, torch.Tensor], device: torch.device, video_dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The batch on ``device`` (``video``/``text`` cast to ``video_dtype`` when given)."""
    out = {}
    for key, value in batch.items():
        value = value.to(device, non_blocking=True)
        if video_dtype is not None and key in ("video", "text"):
            value = value.to(video_dtype)
        out[key] = value
    return out


class ResidentSplit:
    """A whole split as one padded batch on ``device`` (features in ``dtype``); ``batch(indices)``
    gathers rows on the device with no host work beyond the index tensor."""

    def __init__(self, dataset: MomentDataset, device: torch.device, dtype: torch.dtype = torch.float32,
                 threads: int = 16) -> None:
        self.dataset = dataset
        self.device = device
        full = collate(dataset.load_all(threads))
        self.tensors = move(full, device, dtype)

    def __len__(self) -> int:
        return len(self.dataset)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Rows ``indices`` (a long tensor) of every tensor, padded to the split's maximum length."""
        indices = indices.to(self.device)
        return {k: v.index_select(0, indices) for k, v in self.tensors.items()}
