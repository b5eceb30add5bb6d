"""Submissions and leaderboards: entry schema and checks, scoring with a cache, rendering.

Importing this package is cheap: pandas and matplotlib are imported only when rendering.
"""

from mrbench.leaderboard.build import BuildResult, build
from mrbench.leaderboard.submission import Submission, check_path, load_submission

__all__ = ["BuildResult", "Submission", "build", "check_path", "load_submission"]
