"""Experiments: grids of synthetic datasets x models x seeds x masked variants, computed cell by cell
(:mod:`~mrbench.experiment.runner`, from a :mod:`~mrbench.experiment.spec`) and reported on from the
cells alone (:mod:`~mrbench.experiment.report`); docs/experiments.md."""
