"""``micromotion batch``: run a manifest of jobs, resumably, locally or on Ray."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import DEFAULT_GENERATOR, device_option, generator_option
from micromotion.cli._progress import run_job


@click.command()
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o", "--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="Output folder: OUTDIR/NAME/ per row, and the report OUTDIR/batch.jsonl.",
)  # fmt: skip
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="One process here, or Ray Data (a local instance, or --address).",
)
@click.option("--address", default=None, metavar="ADDR", help="A running Ray cluster (ray).")
@generator_option(default=DEFAULT_GENERATOR)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="local: face-alignment processes [default: the cores]; ray: actors that invert and "
    "render [default: one per GPU, else the cores less one].",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Torch threads per inverting/rendering process [default: the cores, shared out].",
)
@device_option
def batch(manifest: Path, outdir: Path, **options: Any) -> None:
    """Run every row of MANIFEST (.csv or .jsonl): animate, invert, discover-video, discover-text.

    Each row is one job, with the settings of the single command under their library names
    (job, photo | latent | seed, micromotion, strength, frames, format, inverter, steps, video,
    template, rank, ...; in a CSV, lists are separated by ';'). A row's files go to
    OUTDIR/NAME/ (NAME: the row's name column, or made from the row). A rerun skips rows that
    finished (their record matches the row, its inputs, outputs and generator) and redoes the
    rest. A row that fails is reported in OUTDIR/batch.jsonl and the others go on; the exit
    status is 1 if any row failed.
    """
    from micromotion.batch import run_batch

    done = run_job(run_batch, manifest, outdir=outdir, unit="row", **options)
    failed = [r for r in done.results if r.status == "failed"]
    for result in failed:
        click.echo(f"failed: {result.error}", err=True)
    click.echo(
        f"{len(done.results)} rows: {done.count('done')} done, {done.count('skipped')} "
        f"skipped (finished before), {len(failed)} failed; report {done.report}"
    )
    if failed:
        sys.exit(1)
