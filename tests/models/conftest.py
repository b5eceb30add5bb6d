"""Fixtures of the model tests: a tiny dataset directory with a planted signal.

:func:`make_dataset` writes the ``mrbench.data.dataset`` layout: two video sources (dims 24 and
16), 16-d text tokens, ``clip_len`` 2 s. Each query has a concept ``k``; its text tokens carry the
concept's text vector, and the clips of its one window carry the concept's video vectors on top
of per-clip noise, so that the window is findable from the text. ``scores=True`` adds
QVHighlights-style ``relevant_clip_ids``/``saliency_scores``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mrbench.data.dataset import DatasetDir, DatasetInfo
from mrbench.data.features import FeatureStore
from mrbench.data.schema import Query, write_annotations

VIDEO_DIMS = {"slowfast_features": 24, "clip_features": 16}
TEXT_DIM = 16
CLIP_LEN = 2.0


def make_dataset(
    root: Path, splits: dict[str, int], seed: int = 0, concepts: int = 6, min_clips: int = 12,
    max_clips: int = 20, scores: bool = True, windows: int = 1, video_dims: dict[str, int] | None = None,
    text_dim: int = TEXT_DIM,
) -> Path:
    """Write a dataset directory with ``splits = {name: n_queries}`` (feature sizes
    ``video_dims``, default :data:`VIDEO_DIMS`, and ``text_dim``); returns ``root``."""
    video_dims = dict(video_dims or VIDEO_DIMS)
    rng = np.random.default_rng(seed)
    video_dirs = {t: rng.normal(size=(concepts, d)) for t, d in video_dims.items()}
    text_dirs = rng.normal(size=(concepts, text_dim))
    store = FeatureStore(root / "features")
    directory = DatasetDir(root)
    qid = 0
    for split, n in splits.items():
        records = []
        for i in range(n):
            concept = int(rng.integers(concepts))
            length = int(rng.integers(min_clips, max_clips + 1))
            vid = f"{split}_v{i}"
            spans = []
            for _ in range(windows):
                width = int(rng.integers(max(3, length // 4), length // 2 + 1))
                start = int(rng.integers(0, length - width + 1))
                spans.append((start, start + width))
            inside = np.zeros(length, dtype=bool)
            for s, e in spans:
                inside[s:e] = True
            for t, d in video_dims.items():
                feats = rng.normal(size=(length, d)) * 0.5
                feats[inside] += 2.0 * video_dirs[t][concept]
                store.write_video(t, vid, feats.astype(np.float32))
            tokens = rng.normal(size=(int(rng.integers(4, 9)), text_dim)) * 0.3 + text_dirs[concept]
            store.write_text(qid, tokens.astype(np.float32))
            record = Query(
                qid=qid, query=f"concept {concept}", vid=vid, duration=length * CLIP_LEN,
                windows=[[s * CLIP_LEN, e * CLIP_LEN] for s, e in sorted(spans)],
            )
            if scores:
                ids = np.flatnonzero(inside).tolist()
                record.relevant_clip_ids = ids
                record.saliency_scores = rng.integers(0, 5, size=(len(ids), 3)).tolist()
            records.append(record)
            qid += 1
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        write_annotations(directory.annotation_path(split), records)
    directory.write_info(DatasetInfo(
        name="tiny-test", clip_len=CLIP_LEN, video_features=video_dims,
        text_features={"clip_text_features": text_dim}, splits=list(splits), max_clips=max_clips, kind="synthetic",
    ))
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 training and 16 validation queries (QVHighlights-style labels)."""
    return make_dataset(tmp_path_factory.mktemp("tiny_data"), {"train": 32, "val": 16})


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for the module (parity tests compare to 1e-5; threads reorder sums)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
