"""Batch jobs: a manifest of rows (animate, invert, discover) run resumably, locally or on Ray.

>>> from micromotion.batch import run_batch
>>> done = run_batch("rows.csv", outdir="out", engine="local")   # doctest: +SKIP
>>> done.ok, done.count("skipped"), done.report                    # doctest: +SKIP

See :mod:`micromotion.batch.manifest` for the rows, :mod:`micromotion.batch.rows` for what a
finished row is, and :mod:`micromotion.batch.engine` / :mod:`micromotion.batch.ray_engine`
for how rows run.
"""

from __future__ import annotations

from micromotion.batch.engine import BatchResult, run_batch
from micromotion.batch.manifest import JOBS, Job, Manifest, parse_manifest
from micromotion.batch.rows import REPORT, RowResult

__all__ = [
    "JOBS",
    "REPORT",
    "BatchResult",
    "Job",
    "Manifest",
    "RowResult",
    "parse_manifest",
    "run_batch",
]
