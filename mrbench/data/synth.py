"""Controlled spurious-correlation datasets: ``mrbench synth``.

The generator writes a dataset directory (``docs/contracts.md``) in the community layout whose
shortcuts are planted on purpose, with known strengths, and recorded per query in
``truth.parquet``. ``docs/synth.md`` gives the full generative model; in short:

* a *world* of ``K`` concepts (an action word and an object word each), ``P`` places, unit
  vectors per feature source: content per concept (a mix of its action, object and own vectors),
  prelude and aftermath per concept, scene per place, slow-drift directions;
* every clip of a video = scene of its place + video identity + slow drift + per-clip noise;
  clips inside a moment add the concept's content (strength ``content`` times the clip's
  saliency); the flank clips around the moment add the concept's prelude/aftermath;
* three cues with strengths in [0, 1]: ``scene`` (P(video place = concept place)), ``flank``
  (P(the concept's prelude/aftermath sit right around the moment)), ``position`` (P(the moment
  starts in a narrow band of the video)); the ``*_ood`` splits have every cue at 0.

When a cue is not planted it is decorrelated, never just removed: the place is uniform over all
places, the flank pair of a uniformly drawn concept is placed *away* from the moment (a decoy
that frames an empty span as long as the moment), and the start is uniform.

Randomness: one generator per split for the plan (so the train split does not change when only
``n_val`` changes), one per video for its features and one per query for its text, all derived
from ``seed``. The output bytes do not depend on ``batch_size``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mrbench.data.dataset import DATASET_FILE, DatasetDir, DatasetInfo
from mrbench.data.features import TEXT_TYPE, FeatureStore, text_name
from mrbench.data.schema import (
    Annotations,
    FileStyle,
    Query,
    read_annotations,
    require_plain_names,
    write_annotations,
)
from mrbench.errors import MrbenchError, ValidationError
from mrbench.io import (
    MAX_CLIP_LEN,
    MAX_CLIPS,
    MAX_FEATURE_DIM,
    MIN_CLIP_LEN,
    atomic_write_bytes,
    check_allocation,
    check_output_dir,
    finite_number,
    refuse_overwrite,
    staged_output,
)

GENERATOR_VERSION = 1
SPLITS = ("train", "val", "val_ood", "test_ood")
OOD_SPLITS = ("val_ood", "test_ood")
VIDEO_TYPES = ("slowfast_features", "clip_features")
#: named dimension presets: (slowfast, clip, text)
DIM_PRESETS = {"default": (256, 128, 128), "qvh": (2304, 512, 512)}
TRUTH_FILE = "truth.parquet"
#: the settings record of a run in progress (in its staging folder; earlier versions wrote it in
#: ``--out`` itself, where ``--resume`` still finds it)
JOB_FILE = ".synth-job.json"
#: Queries per dataset and places per world: far beyond any real dataset, small enough to plan.
MAX_QUERIES = 10_000_000
MAX_PLACES = 10_000
FLANK_OFF_MODES = ("decoy", "swap", "none")

# Random streams (first entry after the seed), so that every stream is independent.
_WORLD, _PLAN, _VIDEO, _TEXT, _WORD = range(5)
_DRIFT_RANK = 4
_WRITERS = 8  # threads writing feature files
# Content vector = normalize(a * action + o * object + u * own) per source: SlowFast sees the
# motion (action) more, CLIP the appearance (object) more.
_CONTENT_MIX = {"slowfast_features": (0.8, 0.4, 0.45), "clip_features": (0.4, 0.8, 0.45)}

ACTIONS = (
    "slicing", "washing", "opening", "carrying", "painting", "folding", "throwing", "repairing",
    "cleaning", "holding", "filming", "cooking", "pouring", "stacking", "kicking", "climbing",
    "pushing", "pulling", "polishing", "wrapping", "shaking", "lifting", "dropping", "feeding",
    "drawing", "reading", "building", "testing", "selling", "catching", "measuring", "moving",
    "unpacking", "hanging", "rolling", "sorting", "weighing", "tasting", "showing", "peeling",
)  # fmt: skip
OBJECTS = (
    "bread", "bicycle", "door", "guitar", "box", "dog", "ball", "car", "window", "laptop",
    "shirt", "ladder", "table", "bottle", "camera", "tent", "boat", "plant", "cake", "chair",
    "phone", "map", "basket", "drum", "kite", "lamp", "book", "fence", "bag", "tire", "rope",
    "pan", "clock", "carpet", "bucket", "helmet", "mirror", "candle", "shoe", "fish",
)  # fmt: skip
SUBJECTS = ("a man", "a woman", "someone", "a person", "a child", "a chef", "a girl", "a boy")
TAILS = ("", " in the video", " slowly", " again", " with care", " for a while", " while talking")
STOPWORDS = frozenset(
    "a an the is are was were be been of in on at to and or with his her their its it from for "
    "while by as into up down some who that this these those there then out over he she they we "
    "you i my our your them him me not no".split()
)


@dataclass
class SynthConfig:
    """Every knob of the generator (``docs/synth.md`` explains each).

    Sizes: ``n_train``, ``n_val`` queries, ``n_ood`` queries in each of ``val_ood`` and
    ``test_ood``; one video per query. With ``annotations`` (paths of community JSONL files)
    the queries, videos, durations, windows and saliency come from those files instead, each
    file becoming one split (``split`` names it when there is a single file), and the sizes,
    ``n_clips`` and the position cue are not used.
    """

    n_train: int = 2000
    n_val: int = 500
    n_ood: int = 500
    concepts: int = 24
    places: int = 12
    dims: str = "default"  # "default", "qvh", "A,B" or "A,B,C" (slowfast, clip[, text])
    clip_len: float = 2.0
    n_clips: int = 75
    content: float = 0.5
    rho_scene: float = 0.9
    rho_flank: float = 0.9
    rho_position: float = 0.5
    flank_width: int = 4
    flank_off: str = "decoy"  # unplanted flanks: "decoy", "swap" (around the moment) or "none"
    position_anchor: float = 0.1
    position_spread: float = 0.1
    window_counts: tuple[float, ...] = (0.6, 0.3, 0.1)  # P(1 window), P(2), P(3)
    window_len: tuple[int, int] = (2, 15)  # clips, inclusive
    window_gap: tuple[int, int] = (1, 6)  # clips between windows, inclusive
    distractors: int = 1
    scene: float = 1.0
    flank: float = 1.0
    identity: float = 0.5
    drift: float = 0.5
    noise: float = 1.0
    text_noise: float = 0.3
    seed: int = 0
    annotations: tuple[str, ...] = ()
    split: str | None = None
    name: str = "synthetic"
    batch_size: int = 64

    def feature_dims(self) -> tuple[int, int, int]:
        """``(slowfast, clip, text)`` dimensions."""
        if self.dims in DIM_PRESETS:
            return DIM_PRESETS[self.dims]
        try:
            values = tuple(int(v) for v in self.dims.split(","))
        except ValueError:
            values = ()
        if len(values) not in (2, 3) or min(values) < 1 or max(values) > MAX_FEATURE_DIM:
            raise MrbenchError(
                f"--dims must be 'default', 'qvh' or 'A,B[,C]' with ints in [1, {MAX_FEATURE_DIM}], got {self.dims!r}"
            )
        return values if len(values) == 3 else (values[0], values[1], values[1])

    def validate(self) -> None:
        """Raise :class:`MrbenchError` naming the first invalid knob."""
        for name in ("rho_scene", "rho_flank", "rho_position", "position_anchor", "position_spread"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise MrbenchError(f"{name} must lie in [0, 1], got {value}")
        for name in ("content", "scene", "flank", "identity", "drift", "noise", "text_noise"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise MrbenchError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("n_train", "n_val", "n_ood", "flank_width", "distractors", "seed", "n_clips", "concepts",
                     "places", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MrbenchError(f"{name} must be an integer >= 0, got {value!r}")
        if self.n_train + self.n_val + 2 * self.n_ood > MAX_QUERIES:
            raise MrbenchError(f"n_train + n_val + 2 x n_ood (queries in all) must be <= {MAX_QUERIES}, "
                               f"got {self.n_train + self.n_val + 2 * self.n_ood}")
        if not self.annotations and self.n_clips > MAX_CLIPS:
            raise MrbenchError(f"n_clips must be <= {MAX_CLIPS}, got {self.n_clips}")
        if self.places > MAX_PLACES:
            raise MrbenchError(f"places must be <= {MAX_PLACES}, got {self.places}")
        if self.concepts < 2 or self.concepts > len(ACTIONS) * len(OBJECTS) // 2:
            raise MrbenchError(f"concepts must lie in [2, {len(ACTIONS) * len(OBJECTS) // 2}], got {self.concepts}")
        if self.places < 1:
            raise MrbenchError(f"places must be >= 1, got {self.places}")
        if not (finite_number(self.clip_len) and MIN_CLIP_LEN <= self.clip_len <= MAX_CLIP_LEN):
            raise MrbenchError(f"clip_len must be > 0 (seconds, in [{MIN_CLIP_LEN}, {MAX_CLIP_LEN}]), got {self.clip_len}")
        lo, hi = self.window_len
        if not 1 <= lo <= hi:
            raise MrbenchError(f"window_len must be 1 <= min <= max, got {self.window_len}")
        if not self.annotations and self.n_clips < hi:
            raise MrbenchError(f"n_clips ({self.n_clips}) must be >= the longest window ({hi} clips)")
        if not 0 <= self.window_gap[0] <= self.window_gap[1]:
            raise MrbenchError(f"window_gap must be 0 <= min <= max, got {self.window_gap}")
        counts = np.asarray(self.window_counts, dtype=float)
        if counts.size == 0 or (counts < 0).any() or counts.sum() <= 0:
            raise MrbenchError(f"window_counts must be non-negative weights, got {self.window_counts}")
        if self.flank_off not in FLANK_OFF_MODES:
            raise MrbenchError(f"flank_off must be one of {', '.join(FLANK_OFF_MODES)}, got {self.flank_off!r}")
        if self.batch_size < 1:
            raise MrbenchError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.split is not None and len(self.annotations) != 1:
            raise MrbenchError("split names the split of a single --annotations file")
        if self.split is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", self.split):
            raise MrbenchError(f"invalid split name {self.split!r}")
        self.feature_dims()

    def strengths(self, split: str) -> dict[str, float]:
        """Cue strengths in ``split`` (every cue at 0 in the OOD splits)."""
        if split in OOD_SPLITS:
            return {"scene": 0.0, "flank": 0.0, "position": 0.0}
        return {"scene": self.rho_scene, "flank": self.rho_flank, "position": self.rho_position}


# --- the world: concepts, vocabulary and the vectors of every feature source ---------------------
@dataclass
class World:
    """The fixed vectors of one dataset (unit rows; strengths are applied when rendering)."""

    concepts: list[tuple[str, str]]  # (action, object) per concept
    place_of: np.ndarray  # [K] place of each concept
    dictionary: dict[str, np.ndarray]  # per source [3K, d]: content, prelude, aftermath rows
    scenes: dict[str, np.ndarray]  # per source [P, d]
    drift: dict[str, np.ndarray]  # per source [r, d]
    text_dim: int
    seed: int
    _words: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_concepts(self) -> int:
        return len(self.concepts)

    def word(self, word: str) -> np.ndarray:
        """The fixed text embedding of ``word`` (unit vector, seeded by the word itself)."""
        vector = self._words.get(word)
        if vector is None:
            rng = np.random.default_rng([self.seed, _WORD, _stable_int(word)])
            vector = _unit(rng.standard_normal((1, self.text_dim), dtype=np.float32))[0]
            self._words[word] = vector
        return vector


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def build_world(config: SynthConfig) -> World:
    """Concepts, places and vectors for ``config`` (depends on seed, concepts, places, dims)."""
    rng = np.random.default_rng([config.seed, _WORLD])
    k = config.concepts
    side = min(len(ACTIONS), max(2, math.ceil(math.sqrt(2 * k))))
    actions = [ACTIONS[i] for i in rng.permutation(len(ACTIONS))[:side]]
    objects = [OBJECTS[i] for i in rng.permutation(len(OBJECTS))[:side]]
    pairs = rng.permutation(side * side)[:k]
    concepts = [(actions[p // side], objects[p % side]) for p in pairs]
    place_of = rng.permutation(k) % config.places
    d_sf, d_clip, d_text = config.feature_dims()
    dictionary, scenes, drift = {}, {}, {}
    for feature_type, dim in zip(VIDEO_TYPES, (d_sf, d_clip), strict=True):
        act = _unit(rng.standard_normal((side, dim), dtype=np.float32))
        obj = _unit(rng.standard_normal((side, dim), dtype=np.float32))
        own = _unit(rng.standard_normal((k, dim), dtype=np.float32))
        wa, wo, wu = _CONTENT_MIX[feature_type]
        a_idx = np.array([actions.index(a) for a, _ in concepts])
        o_idx = np.array([objects.index(o) for _, o in concepts])
        content = _unit(wa * act[a_idx] + wo * obj[o_idx] + wu * own)
        flanks = _unit(rng.standard_normal((2 * k, dim), dtype=np.float32))
        dictionary[feature_type] = np.concatenate([content, flanks])
        scenes[feature_type] = _unit(rng.standard_normal((config.places, dim), dtype=np.float32))
        drift[feature_type] = _unit(rng.standard_normal((_DRIFT_RANK, dim), dtype=np.float32))
    return World(concepts, place_of, dictionary, scenes, drift, d_text, config.seed)


# --- the plan: every query's windows, saliency and cues ------------------------------------------
@dataclass
class PlannedQuery:
    """One query of the plan: its record, its concept and where each cue was planted."""

    split: str
    index: int  # global query index (text random stream)
    record: Query
    concept: int
    concept_words: str
    windows: list[tuple[int, int]]  # clip ranges [start, end)
    saliency: list[np.ndarray]  # per window: content strength of each clip in [0, 1]
    position_cue: bool | None = None
    position_u: float = float("nan")
    scene_cue: bool = False
    flank_cue: bool = False
    flank_mode: str = "none"  # "moment", "decoy", "swap" or "none"
    flank_concept: int = -1
    flank_segments: list[tuple[int, int, int]] = field(default_factory=list)  # (start, end, row)
    decoy: tuple[int, int] | None = None  # the empty span a decoy flank pair frames
    distractors: list[tuple[int, int, int, float]] = field(default_factory=list)  # (concept, s, e, w)


@dataclass
class PlannedVideo:
    """One video: its clips, place and the queries that share it."""

    vid: str
    index: int  # global video index (feature random stream)
    n_clips: int
    place: int = -1
    queries: list[PlannedQuery] = field(default_factory=list)


def _num(value: float) -> int | float:
    """``150`` rather than ``150.0`` for whole numbers, as QVHighlights writes them."""
    value = round(float(value), 6)
    return int(value) if value.is_integer() else value


def _bump(length: int) -> np.ndarray:
    return np.sin(np.pi * (np.arange(length) + 0.5) / length)


def _scores(rng: np.random.Generator, h: np.ndarray) -> list[list[int]]:
    """Scores 0..4 of three annotators for clips of content strength ``h``."""
    raw = 4.0 * h[:, None] + rng.normal(0.0, 0.7, size=(h.size, 3))
    return np.clip(np.rint(raw), 0, 4).astype(int).tolist()


def _sentence(rng: np.random.Generator, action: str, obj: str) -> str:
    subject = SUBJECTS[rng.integers(len(SUBJECTS))]
    det = "the" if rng.random() < 0.7 else "a"
    return f"{subject} is {action} {det} {obj}{TAILS[rng.integers(len(TAILS))]}"


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens of a query."""
    return re.findall(r"[a-z0-9']+", text.lower())


def key_word(text: str) -> str:
    """The word that picks a real query's concept: its longest non-stopword (first on ties)."""
    words = [w for w in tokenize(text) if w not in STOPWORDS] or tokenize(text) or [text]
    return max(words, key=len)


def _plan_synthetic_split(
    config: SynthConfig, world: World, split: str, split_index: int, n: int, first: int
) -> tuple[list[PlannedQuery], np.random.Generator]:
    """Windows, saliency, text and the position cue of ``n`` new queries in ``split``."""
    rng = np.random.default_rng([config.seed, _PLAN, split_index])
    T, cl = config.n_clips, config.clip_len
    rho_pos = config.strengths(split)["position"]
    concepts = rng.integers(world.n_concepts, size=n)
    pos_cue = rng.random(n) < rho_pos
    band = config.position_anchor + config.position_spread * (rng.random(n) - 0.5)
    u = np.where(pos_cue, np.clip(band, 0.0, 1.0), rng.random(n))
    probs = np.asarray(config.window_counts, dtype=float)
    counts = rng.choice(probs.size, size=n, p=probs / probs.sum()) + 1
    lo, hi = config.window_len
    g_lo, g_hi = config.window_gap
    planned = []
    for i in range(n):
        k = int(concepts[i])
        lengths = rng.integers(lo, hi + 1, size=counts[i]).tolist()
        gaps = rng.integers(g_lo, g_hi + 1, size=counts[i] - 1).tolist()
        while len(lengths) > 1 and sum(lengths) + sum(gaps) > T:
            lengths.pop()
            gaps.pop()
        span = sum(lengths) + sum(gaps)
        start = int(round(u[i] * (T - span)))
        windows, cursor = [], start
        for j, length in enumerate(lengths):
            windows.append((cursor, cursor + length))
            cursor += length + (gaps[j] if j < len(gaps) else 0)
        saliency = []
        for s, e in windows:
            amp = rng.uniform(0.5, 1.0)
            h = amp * (0.6 + 0.4 * _bump(e - s)) + rng.uniform(-0.1, 0.1, size=e - s)
            saliency.append(np.clip(h, 0.1, 1.0))
        h_all = np.concatenate(saliency)
        action, obj = world.concepts[k]
        qid = first + i
        record = Query(
            qid=qid,
            query=_sentence(rng, action, obj),
            vid=f"v{qid:06d}",
            duration=_num(T * cl),
            windows=[[_num(s * cl), _num(e * cl)] for s, e in windows],
            relevant_clip_ids=[t for s, e in windows for t in range(s, e)],
            saliency_scores=_scores(rng, h_all),
        )
        planned.append(
            PlannedQuery(split, qid, record, k, f"{action} {obj}", windows, saliency,
                         bool(pos_cue[i]), float(u[i]))
        )
    return planned, rng


def _windows_to_clips(record: Query, n_clips: int, clip_len: float) -> list[tuple[int, int]]:
    out = []
    for start, end in record.windows or []:
        s = min(n_clips - 1, int(math.floor(start / clip_len + 1e-9)))
        e = min(n_clips, int(math.ceil(end / clip_len - 1e-9)))
        out.append((s, max(e, s + 1)))
    return out


def _plan_annotation_split(
    config: SynthConfig, world: World, split: str, annotations: Annotations, first: int
) -> list[PlannedQuery]:
    """Concepts and per-clip content strengths of the queries of a real annotation file."""
    planned = []
    for i, record in enumerate(annotations.records):
        n_clips = max(1, math.ceil(record.duration / config.clip_len - 1e-9))
        if n_clips > MAX_CLIPS:
            raise ValidationError(f"{n_clips} clips of {config.clip_len:g} s is more than the bound of {MAX_CLIPS}",
                                  file=annotations.path, qid=record.qid, field="duration")
        windows = _windows_to_clips(record, n_clips, config.clip_len)
        given = {}
        if record.relevant_clip_ids and record.saliency_scores:
            for clip, row in zip(record.relevant_clip_ids, record.saliency_scores, strict=True):
                given[clip] = float(np.clip(np.mean(row) / 4.0, 0.0, 1.0)) if row else 0.75
        saliency = []
        for s, e in windows:
            default = 0.8 * (0.6 + 0.4 * _bump(e - s))
            saliency.append(np.array([given.get(t, default[t - s]) for t in range(s, e)]))
        word = key_word(record.query)
        concept = _stable_int(f"{config.seed}\x00{word}") % world.n_concepts
        planned.append(PlannedQuery(split, first + i, record, concept, word, windows, saliency))
    return planned


def _free_starts(blocked: np.ndarray, length: int) -> np.ndarray:
    """Starts ``s`` with ``blocked[s:s+length]`` all False."""
    if length > blocked.size:
        return np.zeros(0, dtype=int)
    window = np.lib.stride_tricks.sliding_window_view(blocked, length)
    return np.flatnonzero(~window.any(axis=1))


def _plant_context(config: SynthConfig, world: World, videos: list[PlannedVideo],
                   rngs: dict[str, np.random.Generator]) -> None:
    """Draw each video's place and each query's flanks, decoys and distractors."""
    K, w = world.n_concepts, config.flank_width
    for video in videos:
        T = video.n_clips
        moment = np.zeros(T, dtype=bool)
        zone = np.zeros(T, dtype=bool)  # moments widened by the flank width
        for q in video.queries:
            for s, e in q.windows:
                moment[s:e] = True
                zone[max(0, s - w) : e + w] = True
        for qi, q in enumerate(video.queries):
            rng = rngs[q.split]
            rho = config.strengths(q.split)
            if qi == 0:  # the first query of a video draws its place
                q.scene_cue = bool(rng.random() < rho["scene"])
                video.place = int(world.place_of[q.concept]) if q.scene_cue else int(rng.integers(config.places))
            q.flank_cue = bool(rng.random() < rho["flank"])
            any_concept = int(rng.integers(K))
            other_concept = int(rng.integers(K - 1))
            other_concept += other_concept >= q.concept  # any concept but the query's own
            picks = rng.random(1 + config.distractors)
            blocked = zone.copy()
            if q.flank_cue or config.flank_off == "swap":
                q.flank_mode = "moment" if q.flank_cue else "swap"
                q.flank_concept = q.concept if q.flank_cue else other_concept
                for s, e in q.windows:
                    _add_flank(q, moment, max(0, s - w), s, q.flank_concept, K, 0)
                    _add_flank(q, moment, e, min(T, e + w), q.flank_concept, K, 1)
            elif config.flank_off == "decoy" and w > 0:
                span = max(e for _, e in q.windows) - min(s for s, _ in q.windows)
                a = _decoy_start(zone, w, span, picks[0])
                if a is not None:
                    q.flank_mode, q.flank_concept = "decoy", any_concept
                    g0, g1 = a + w, a + w + span
                    q.decoy = (g0, g1)
                    _add_flank(q, moment, max(0, a), max(0, min(T, g0)), any_concept, K, 0)
                    _add_flank(q, moment, max(0, min(T, g1)), max(0, min(T, g1 + w)), any_concept, K, 1)
                    for s, e, _ in q.flank_segments:
                        blocked[s:e] = True
            for j in range(config.distractors):
                concept = int(rng.integers(K - 1))
                concept += concept >= q.concept  # any concept but the query's own
                length = int(rng.integers(2, 9))
                strength = float(rng.uniform(0.6, 1.0))
                starts = _free_starts(blocked, length)
                if starts.size:
                    s = int(starts[int(picks[1 + j] * starts.size)])
                    q.distractors.append((concept, s, s + length, strength))
                    blocked[s : s + length] = True


def _decoy_start(zone: np.ndarray, w: int, span: int, pick: float) -> int | None:
    """Start ``a`` (video clips, may be negative) of a decoy: prelude ``[a, a+w)``, empty span,
    aftermath ``[a+w+span, a+2w+span)``. Its flank clips inside the video avoid ``zone``; starts
    that keep a full flank width inside the video are preferred. None when nothing fits."""
    T, pad = zone.size, 2 * w + span
    blocked = np.concatenate([[0], np.cumsum(np.concatenate([np.zeros(pad), zone, np.zeros(pad)]))])
    video = np.concatenate([[0], np.cumsum(np.concatenate([np.zeros(pad), np.ones(T), np.zeros(pad)]))])
    a = np.arange(T + pad)  # prelude start in the padded frame
    post = a + w + span
    hits = (blocked[a + w] - blocked[a]) + (blocked[post + w] - blocked[post])
    inside = (video[a + w] - video[a]) + (video[post + w] - video[post])
    for need in (w, 1):
        starts = np.flatnonzero((hits == 0) & (inside >= need))
        if starts.size:
            return int(starts[int(pick * starts.size)]) - pad
    return None


def _add_flank(q: PlannedQuery, moment: np.ndarray, s: int, e: int, concept: int, K: int, kind: int) -> None:
    """Flank rows on the clips of ``[s, e)`` that are not inside a moment (kind 0 prelude, 1 aftermath)."""
    row = (1 + kind) * K + concept
    free = np.flatnonzero(~moment[s:e]) + s
    if free.size == 0:
        return
    # contiguous runs of free clips
    breaks = np.flatnonzero(np.diff(free) > 1)
    for run in np.split(free, breaks + 1):
        q.flank_segments.append((int(run[0]), int(run[-1]) + 1, row))


def plan(config: SynthConfig, world: World | None = None) -> tuple[World, list[PlannedVideo]]:
    """The full plan of a dataset (no features): world, videos and their queries."""
    config.validate()
    world = world or build_world(config)
    videos: dict[str, PlannedVideo] = {}
    rngs: dict[str, np.random.Generator] = {}
    queries: list[PlannedQuery] = []
    if config.annotations:
        seen: dict[object, str] = {}
        for split_index, (split, annotations) in enumerate(load_annotation_splits(config)):
            rngs[split] = np.random.default_rng([config.seed, _PLAN, split_index])
            for record in annotations.records:
                if record.qid in seen:
                    raise MrbenchError(f"qid {record.qid!r} appears in both {seen[record.qid]} and {split}")
                seen[record.qid] = split
            queries += _plan_annotation_split(config, world, split, annotations, len(queries))
    else:
        sizes = {"train": config.n_train, "val": config.n_val, "val_ood": config.n_ood, "test_ood": config.n_ood}
        for split_index, split in enumerate(SPLITS):
            planned, rngs[split] = _plan_synthetic_split(config, world, split, split_index, sizes[split], len(queries))
            queries += planned
    for q in queries:
        n_clips = max(1, math.ceil(q.record.duration / config.clip_len - 1e-9))
        video = videos.get(q.record.vid)
        if video is None:
            video = videos[q.record.vid] = PlannedVideo(q.record.vid, len(videos), n_clips)
        video.queries.append(q)
    _plant_context(config, world, list(videos.values()), rngs)
    return world, list(videos.values())


def load_annotation_splits(config: SynthConfig) -> list[tuple[str, Annotations]]:
    """``(split name, annotations)`` of each ``--annotations`` file.

    A single file is named by ``config.split``, else by the first of train/val/test found in its
    file name (``highlight_val_release.jsonl`` -> ``val``), else by its stem.
    """
    out = []
    for path in config.annotations:
        annotations = read_annotations(path, require_windows=True)
        if not annotations.records:
            raise ValidationError("the annotation file has no queries", file=path)
        require_plain_names(annotations)
        name = config.split or _split_name(Path(path))
        if name in (s for s, _ in out):
            raise MrbenchError(f"two --annotations files map to split {name!r}; rename one file")
        out.append((name, annotations))
    return out


def _split_name(path: Path) -> str:
    for name in ("train", "val", "test"):
        if re.search(rf"(^|[^a-z]){name}([^a-z]|$)", path.stem.lower()):
            return name
    return path.stem


# --- rendering -------------------------------------------------------------------------------------
def render(config: SynthConfig, world: World, videos: Sequence[PlannedVideo]) -> dict[str, np.ndarray]:
    """Features of a batch of videos: ``{type: [B, max n_clips, d]}`` float32 (zero past each end)."""
    B, T = len(videos), max(v.n_clips for v in videos)
    dims = {t: world.dictionary[t].shape[1] for t in VIDEO_TYPES}
    out = {t: np.zeros((B, T, d), dtype=np.float32) for t, d in dims.items()}
    ident = {t: np.zeros((B, d), dtype=np.float32) for t, d in dims.items()}
    walk = np.zeros((B, T, _DRIFT_RANK), dtype=np.float32)
    for i, video in enumerate(videos):
        rng = np.random.default_rng([config.seed, _VIDEO, video.index])
        n = video.n_clips
        for t in VIDEO_TYPES:
            ident[t][i] = _unit(rng.standard_normal((1, dims[t]), dtype=np.float32))[0]
        steps = rng.standard_normal((n, _DRIFT_RANK), dtype=np.float32)
        walk[i, :n] = np.cumsum(steps, axis=0) / np.float32(math.sqrt(n))
        for t in VIDEO_TYPES:
            rng.standard_normal(dtype=np.float32, out=out[t][i, :n])
    places = np.array([v.place for v in videos])
    segments = _segments(config, videos)
    for t in VIDEO_TYPES:
        x = out[t]
        x *= np.float32(config.noise / math.sqrt(dims[t]))
        x += (np.float32(config.scene) * world.scenes[t][places] + np.float32(config.identity) * ident[t])[:, None, :]
        basis = world.drift[t] * np.float32(config.drift / math.sqrt(_DRIFT_RANK))
        x += np.einsum("btr,rd->btd", walk, basis)  # plain einsum: no BLAS, fixed summation order
        dictionary = world.dictionary[t]
        for b, s, e, row, weights in segments:
            x[b, s:e] += weights[:, None] * dictionary[row]
        for i, video in enumerate(videos):
            x[i, video.n_clips :] = 0.0
    return out


def _segments(
    config: SynthConfig, videos: Sequence[PlannedVideo]
) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Every content/flank addition as ``(video row, start clip, end clip, dictionary row,
    per-clip weights)``, in a fixed order."""
    out = []
    for b, video in enumerate(videos):
        for q in video.queries:
            for (s, e), h in zip(q.windows, q.saliency, strict=True):
                out.append((b, s, e, q.concept, (config.content * h).astype(np.float32)))
            for s, e, row in q.flank_segments:
                out.append((b, s, e, row, np.full(e - s, config.flank, dtype=np.float32)))
            for concept, s, e, strength in q.distractors:
                weights = config.content * strength * (0.6 + 0.4 * _bump(e - s))
                out.append((b, s, e, concept, weights.astype(np.float32)))
    return out


def text_features(config: SynthConfig, world: World, q: PlannedQuery) -> np.ndarray:
    """Token features ``[n_tokens, d_text]``: start token, the words, end token, plus noise."""
    tokens = ["<|startoftext|>", *tokenize(q.record.query), "<|endoftext|>"]
    base = np.stack([world.word(t) for t in tokens])
    rng = np.random.default_rng([config.seed, _TEXT, q.index])
    noise = rng.standard_normal(base.shape, dtype=np.float32)
    return base + np.float32(config.text_noise / math.sqrt(world.text_dim)) * noise


# --- truth and writing ----------------------------------------------------------------------------
def truth_rows(config: SynthConfig, world: World, videos: Sequence[PlannedVideo]) -> list[dict]:
    """One row per query: concept, place and where every cue was planted (seconds)."""
    cl = config.clip_len
    out = []
    for video in videos:
        for q in video.queries:
            def sec(s: int, e: int) -> list[float]:
                return [s * cl, e * cl]

            out.append({
                "split": q.split,
                "qid": q.record.qid,
                "vid": video.vid,
                "concept": q.concept,
                "concept_words": q.concept_words,
                "concept_place": int(world.place_of[q.concept]),
                "place": video.place,
                "scene_cue": q.scene_cue,
                "scene_match": video.place == int(world.place_of[q.concept]),
                "flank_cue": q.flank_cue,
                "flank_mode": q.flank_mode,
                "flank_concept": q.flank_concept,
                "flank_windows": [sec(s, e) for s, e, _ in q.flank_segments],
                "flank_kinds": ["prelude" if row < 2 * world.n_concepts else "aftermath" for _, _, row in q.flank_segments],
                "decoy_window": sec(*q.decoy) if q.decoy else None,
                "position_cue": q.position_cue,
                "position_u": q.position_u,
                "n_windows": len(q.windows),
                "window_starts": [s * cl for s, _ in q.windows],
                "window_ends": [e * cl for _, e in q.windows],
                "distractor_concepts": [c for c, _, _, _ in q.distractors],
                "distractor_windows": [sec(s, e) for _, s, e, _ in q.distractors],
            })
    return out


def _truth_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    qids = [r["qid"] for r in rows]
    qid_type = pa.int64() if all(isinstance(q, int) for q in qids) else pa.string()
    columns = {key: [r[key] for r in rows] for key in rows[0]} if rows else {}
    if qid_type == pa.string():
        columns["qid"] = [str(q) for q in qids]
    window_list = pa.list_(pa.list_(pa.float64()))
    schema = pa.schema([
        ("split", pa.string()), ("qid", qid_type), ("vid", pa.string()), ("concept", pa.int32()),
        ("concept_words", pa.string()), ("concept_place", pa.int32()), ("place", pa.int32()),
        ("scene_cue", pa.bool_()), ("scene_match", pa.bool_()), ("flank_cue", pa.bool_()),
        ("flank_mode", pa.string()), ("flank_concept", pa.int32()), ("flank_windows", window_list),
        ("flank_kinds", pa.list_(pa.string())), ("decoy_window", pa.list_(pa.float64())),
        ("position_cue", pa.bool_()), ("position_u", pa.float64()), ("n_windows", pa.int32()),
        ("window_starts", pa.list_(pa.float64())), ("window_ends", pa.list_(pa.float64())),
        ("distractor_concepts", pa.list_(pa.int32())), ("distractor_windows", window_list),
    ])
    table = pa.table(columns, schema=schema) if rows else schema.empty_table()
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def job_record(config: SynthConfig) -> dict:
    """What makes the data: the generator version and every setting but the batch size (as
    JSON values, to compare with what a previous run stored)."""
    settings = asdict(config)
    settings["annotations"] = [str(p) for p in config.annotations]
    del settings["batch_size"]  # does not change the data
    return json.loads(json.dumps({"generator_version": GENERATOR_VERSION, "config": settings}))


def _recorded_job(out: Path) -> dict | None:
    """The job record of the complete synthetic dataset at ``out`` (None when it is not one)."""
    if not (out / DATASET_FILE).is_file():
        return None
    try:
        info = DatasetDir(out).info()
    except MrbenchError:
        return None
    if info.kind != "synthetic":
        return None
    return {"generator_version": info.extra.get("generator_version"), "config": info.extra.get("config")}


def _has_features(folder: Path) -> bool:
    """Whether an interrupted run in ``folder`` wrote feature files (worth resuming)."""
    return any((folder / "features").glob("*/*.npz"))


def _written(store: FeatureStore, video: PlannedVideo) -> bool:
    """Whether every file of ``video`` exists (files are renamed into place only when whole)."""
    return all((store.root / t / f"{video.vid}.npz").is_file() for t in VIDEO_TYPES) and all(
        (store.root / TEXT_TYPE / f"{text_name(q.record.qid)}.npz").is_file() for q in video.queries)


def generate(
    config: SynthConfig, out: str | os.PathLike[str], progress: bool = True, force: bool = False,
    resume: bool = False,
) -> Path:
    """Write the dataset of ``config`` to the directory ``out`` and return its path.

    Features are rendered and written one batch of ``config.batch_size`` videos at a time, so
    memory stays bounded whatever the size. The dataset is built beside ``out`` and swapped in
    when complete (:func:`mrbench.io.staged_output`), so a kill at any moment leaves the old or
    the new one whole. ``force`` replaces a synthetic dataset (complete or interrupted).
    ``resume`` finishes an interrupted run of the same settings, writing only the videos it
    lacks (the bytes equal an uninterrupted run's, since every video is rendered from its own
    seed). The folder is locked while written (a second writer gets an error naming the first).
    """
    config.validate()
    out = Path(out)
    refuse_overwrite(out, config.annotations, "--out")
    check_output_dir(out, "--out")
    job = job_record(config)
    world, videos = plan(config)
    d_sf, d_clip, _ = config.feature_dims()
    longest = max((v.n_clips for v in videos), default=1)
    check_allocation((2 * min(config.batch_size, len(videos)), longest, d_sf + d_clip), 4,
                     "a batch of rendered videos", field="duration" if config.annotations else "n_clips")
    with staged_output(out, job, recorded=_recorded_job, resume=resume, replace=force, record=JOB_FILE,
                       resumable=_has_features, legacy=[out], what="synthetic dataset") as run:
        if not run.done:
            _write(config, world, videos, run.folder, job, run.resumed, progress)
    return out


def _write(config: SynthConfig, world: World, videos: list[PlannedVideo], out: Path, job: dict, resumed: bool,
           progress: bool) -> None:
    """Write the planned dataset into ``out``, or (``resumed``) only the videos it lacks."""
    from tqdm import tqdm

    d_sf, d_clip, d_text = config.feature_dims()
    directory = DatasetDir(out)
    store = FeatureStore(directory.features_root)
    todo = videos
    if resumed:
        for folder in (store.root / t for t in (*VIDEO_TYPES, TEXT_TYPE)):
            for stray in folder.glob(".*.tmp"):  # left by a killed writer
                stray.unlink()
        todo = [video for video in videos if not _written(store, video)]
    split_files = dict(load_annotation_splits(config)) if config.annotations else {}
    splits = list(split_files) or list(SPLITS)
    by_split: dict[str, list[Query]] = {s: [] for s in splits}
    for video in videos:
        for q in video.queries:
            by_split[q.split].append(q.record)
    for split in splits:
        if split in split_files:  # the real file, byte for byte
            write_annotations(directory.annotation_path(split), split_files[split])
        else:
            style = FileStyle(final_newline=True)
            write_annotations(directory.annotation_path(split), by_split[split], style)
    (directory.features_root / TEXT_TYPE).mkdir(parents=True, exist_ok=True)
    # Writing is bound by fsync latency, so threads write while the next batch renders; at most
    # two batches are held in memory. File contents do not depend on the order of writes.
    with tqdm(total=len(videos), initial=len(videos) - len(todo), desc="synth", unit="video",
              disable=not progress) as bar, ThreadPoolExecutor(max_workers=_WRITERS) as pool:
        pending: list[Future] = []
        previous = 0  # videos in the batch being written
        for first in range(0, len(todo), config.batch_size):
            batch = todo[first : first + config.batch_size]
            features = render(config, world, batch)
            texts = [(q.record.qid, text_features(config, world, q)) for v in batch for q in v.queries]
            for fut in pending:
                fut.result()
            bar.update(previous)
            previous = len(batch)
            pending = [
                pool.submit(store.write_video, t, video.vid, features[t][i, : video.n_clips])
                for i, video in enumerate(batch)
                for t in VIDEO_TYPES
            ] + [pool.submit(store.write_text, qid, tokens) for qid, tokens in texts]
        for fut in pending:
            fut.result()
        bar.update(previous)
    atomic_write_bytes(out / TRUTH_FILE, _truth_bytes(truth_rows(config, world, videos)))
    info = DatasetInfo(
        name=config.name,
        clip_len=config.clip_len,
        video_features={"slowfast_features": d_sf, "clip_features": d_clip},
        text_features={TEXT_TYPE: d_text},
        splits=splits,
        max_clips=max((v.n_clips for v in videos), default=config.n_clips),
        kind="synthetic",
        extra={
            "generator": "mrbench.data.synth",
            "generator_version": GENERATOR_VERSION,
            "config": job["config"],
            "queries": {s: len(by_split[s]) for s in splits},
            "videos": len(videos),
            "cue_strengths": {s: config.strengths(s) if not config.annotations else
                              {**config.strengths(s), "position": None} for s in splits},
            "concepts": [
                {"concept": k, "action": a, "object": o, "place": int(world.place_of[k])}
                for k, (a, o) in enumerate(world.concepts)
            ],
            "truth": TRUTH_FILE,
        },
    )
    directory.write_info(info)
