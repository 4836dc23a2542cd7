"""The Ray engine: the same rows, read and aligned as CPU tasks, run in actors that load once.

A Ray Data pipeline over the pending rows: faces are aligned in tasks (``map``, one core each,
retried if their worker dies), and inversion and rendering run in actors (``map_batches``
with a callable class) that parse the manifest and keep their networks for the whole run
(:class:`~micromotion.pipelines._load.NetworkCache`). Each actor gets a GPU when the cluster
has them (and ``device`` allows), else a share of the cores: actors × threads never exceed the
cores left after one for alignment, because oversubscribed linear algebra on a busy machine
runs up to hundreds of times slower. Rows travel as their numbers; every worker reads the
manifest, its inputs and the output folder from the same paths, so a cluster needs a shared
filesystem. A worker that dies mid-row is restarted by Ray and its row is run again from an
emptied folder (see :mod:`micromotion.batch.rows`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from micromotion.batch import _align
from micromotion.batch._shared import Fingerprints, Run, cpu_count, fail_all
from micromotion.batch.manifest import Job, parse_manifest
from micromotion.batch.rows import RowResult, run_row
from micromotion.errors import MicromotionError
from micromotion.pipelines.photo import FACE_CROP, crop_key

#: How often a task or actor is restarted after its worker dies before the batch gives up.
RETRIES = 2


def require_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise MicromotionError(
            'the Ray engine needs Ray: pip install "micromotion[ray]" (or use --engine local)'
        ) from None
    return ray


class RowRunner:
    """A Ray actor: parses the manifest once, keeps its networks, and runs rows it is given."""

    def __init__(
        self, manifest: str, generator: str, outdir: str, device: str, threads: int
    ) -> None:
        """Load nothing yet: networks load on the first row that needs them, then stay."""
        import torch

        from micromotion.pipelines._load import NetworkCache

        torch.set_num_threads(threads)
        parsed = parse_manifest(manifest, generator=generator)
        self.jobs = {job.number: job for job in parsed.jobs}
        self.sha256 = parsed.sha256
        self.outdir = Path(outdir)
        self.device = device
        self.cache = NetworkCache()
        self.fingerprint = Fingerprints(device)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """Run each row of the batch; one result per row."""
        from micromotion.pipelines._load import reuse_networks

        results: dict[str, list[Any]] = {k: [] for k in ("number", "status", "error", "seconds")}
        results["files"] = []
        crops = batch.get("crop", [None] * len(batch["number"]))  # no alignment stage: no crops
        for number, crop, key in zip(batch["number"], crops, batch["key"], strict=True):
            job = self.jobs[int(number)]
            with reuse_networks(self.cache):
                if crop is not None:
                    self.cache.put(FACE_CROP, job.photo, tuple(key), crop)
                result = run_row(job, self.outdir, device=self.device,
                                 fingerprint=self.fingerprint, manifest=self.sha256)  # fmt: skip
            results["number"].append(result.number)
            results["status"].append(result.status)
            results["error"].append(result.error or "")
            results["seconds"].append(result.seconds)
            results["files"].append(list(result.files))
        return results


def _align_row(row: dict[str, Any]) -> dict[str, Any]:
    """A Ray task: align the row's photo (if it has one) into the crop the actor will use."""
    if row["photo"]:
        key = row["key"]
        row["crop"] = _align.align_photo(row["photo"], int(key[0]), bool(key[1]), key[2])
    else:
        row["crop"] = None
    return row


def run_on_ray(run: Run) -> None:
    """Run the manifest's pending rows on Ray (a local instance, or the cluster at ``address``).

    Finished rows are skipped before Ray starts: a rerun with nothing to do starts nothing.
    """
    ray = require_ray()
    pending = _pending(run)
    if not pending:
        return
    started = not ray.is_initialized()
    if started:
        _quiet()
        try:
            ray.init(
                address=run.address,
                num_cpus=None if run.address else cpu_count(),
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = run.address or "a local instance"
            raise MicromotionError(f"cannot start Ray at {where}: {exc}") from None
    try:
        _run(ray, run, pending)
    finally:
        if started:
            ray.shutdown()


def _quiet() -> None:
    # Ray Data prints its execution plan and progress bars; the CLI shows its own progress,
    # and Ray's logs stay in its session folder.
    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)


Pending = list[tuple[Job, tuple[int, bool, int | None] | None]]


def _pending(run: Run) -> Pending:
    """The rows to run, each with the key of its face crop (``None`` without a photo).

    The driver learns each generator's resolution (the crops' size) here; the networks it
    loads for that are dropped before the actors start.
    """
    from micromotion.pipelines._load import NetworkCache, reuse_networks

    pending: Pending = []
    fingerprint = Fingerprints("cpu")
    with reuse_networks(NetworkCache()):
        for todo, G in run.groups(fingerprint, "cpu"):
            for job in todo:
                key = None
                if job.photo is not None:
                    key = crop_key(G.img_resolution, job.align, job.face)
                pending.append((job, key))
    return pending


def _run(ray: Any, run: Run, pending: Pending) -> None:
    manifest, out, device, workers, threads = (
        run.manifest,
        run.out,
        run.device,
        run.workers,
        run.threads,
    )
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if device != "cpu" else 0
    cores = max(1, int(resources.get("CPU", 1)))
    nodes = max(1, sum(1 for node in ray.nodes() if node.get("Alive")))
    aligning = any(key is not None for _, key in pending)
    # One core stays free for the alignment tasks when there is anything to align (half of
    # one on a one-core machine); the actors share the rest. Every reservation fits in the
    # cores there are, so no stage waits forever for cores another stage holds. On CPUs one
    # actor per node with that node's cores is as fast as several sharing them.
    align_cpus = 0.0 if not aligning else (1.0 if cores >= 2 else 0.5)
    actors = min(workers or gpus or nodes, len(pending))
    reserve = (cores - align_cpus) / actors  # cores each actor may hold
    if threads is not None:
        per_actor = threads
    elif gpus:
        per_actor = 1  # the GPU does the work; the cores stay free for alignment
    else:
        per_actor = max(1, int(reserve))
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    items = [
        {
            "number": job.number,
            "photo": str(job.photo) if key is not None else "",
            "key": list(key) if key is not None else [0, False, None],
        }
        for job, key in pending
    ]
    remote = {"num_gpus": 1} if gpus else {"num_cpus": min(float(per_actor), reserve)}
    dataset = ray.data.from_items(items)
    if aligning:
        dataset = dataset.map(_align_row, num_cpus=align_cpus, max_retries=RETRIES)
    dataset = dataset.map_batches(
        RowRunner,
        fn_constructor_kwargs={
            "manifest": str(manifest.path),
            "generator": manifest.default_generator,
            "outdir": str(out),
            "device": device if gpus else "cpu",
            "threads": per_actor,
        },
        batch_size=1,
        concurrency=actors,
        max_restarts=RETRIES,
        max_task_retries=RETRIES,
        **remote,
    )
    by_number = {job.number: job for job, _ in pending}
    seen: set[int] = set()
    try:
        for row in dataset.iter_rows():
            number = int(row["number"])
            seen.add(number)
            job = by_number[number]
            run.record(RowResult(number, job.name, job.kind, row["status"],
                                   row["error"] or None, float(row["seconds"]),
                                   tuple(row["files"])))  # fmt: skip
    except Exception as exc:  # Ray gave up (a worker died more than RETRIES times)
        left = [job for job, _ in pending if job.number not in seen]
        stopped = MicromotionError(f"Ray stopped: {type(exc).__name__}: {exc}")
        fail_all(left, stopped, run.report, run.tick)
