"""Annotation schema and I/O, dataset catalog, feature store (and the synthetic generator)."""

from mrbench.data.features import FeatureStore, PackedStore, open_store, pack_features
from mrbench.data.schema import (
    Annotations,
    FileStyle,
    Query,
    read_annotations,
    read_charades_raw,
    write_annotations,
)

__all__ = [
    "Annotations",
    "FeatureStore",
    "FileStyle",
    "PackedStore",
    "Query",
    "open_store",
    "pack_features",
    "read_annotations",
    "read_charades_raw",
    "write_annotations",
]
