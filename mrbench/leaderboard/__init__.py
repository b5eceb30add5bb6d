"""Submissions and leaderboards: entry schema and checks, scoring with a cache, rendering.

Modules, each importing only those listed before it:

* ``table``: the table model (rows, groups, aggregation over seeds, order, Δ families); no I/O;
* ``fingerprint``: content hashes of a code path's import closure;
* ``submission``: the entry schema (``submission.yaml``) and the ground-truth store;
* ``reported``: numbers published with the TD-DETR paper;
* ``render``: Markdown, CSV, Parquet, HTML and PNG files from the table model;
* ``runs``: scoring one run of an entry, its cache key, ``submission check``;
* ``cache``: the build's cache file;
* ``entries``: writing entries and the ground-truth store;
* ``build``: ``mrbench leaderboard build``, the orchestration.

Importing this package is cheap: pandas and matplotlib are imported only when rendering.
"""

from mrbench.leaderboard.build import BuildResult, build
from mrbench.leaderboard.runs import check_path
from mrbench.leaderboard.submission import Submission, load_submission

__all__ = ["BuildResult", "Submission", "build", "check_path", "load_submission"]
