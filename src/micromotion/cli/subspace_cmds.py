"""``micromotion discover latents``, ``micromotion info``, ``micromotion import-official``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from micromotion.cli._common import (
    apply_preset,
    decomposition_options,
    file_option,
    make_decomposition,
    preset_option,
)


@click.group()
def discover() -> None:
    """Decode a micromotion from anchors: text prompts, a video, or saved latents.

    Refused, as they decode no motion: identical anchors, a decoded direction that is zero,
    anchors so large that the direction overflows float32, and `discover text --steps 1`
    (the learning rate ramps up from 0, so one step leaves every anchor where it started).
    """


@discover.command("latents")
@click.argument("anchors_path", metavar="ANCHORS.npy", type=click.Path(path_type=Path))
@file_option("-o", "--output", required=True)
@decomposition_options
@preset_option
@click.option("--no-robust", is_flag=True, help="Plain truncated PCA instead of robust PCA.")
@click.option("--center", is_flag=True, help="Subtract the per-layer mean first.")
@click.option("--generator-fingerprint", default=None, help="sha256 of the anchors' generator.")
def discover_latents(
    anchors_path: Path,
    output: Path,
    no_robust: bool,
    generator_fingerprint: str | None,
    **options: Any,
) -> None:
    """Decode a micromotion from ANCHORS.npy ([n, num_ws, w_dim], in motion order).

    With --preset paper the paper code's decomposition: its RPCA settings, rank 4, and the
    direction from the first to the second-to-last reconstructed anchor (its slip; anchors
    saved by `discover text` are in the code's order, start code first).
    """
    from micromotion.pipelines.discover import discover_latents as run

    options["robust"] = not no_robust
    preset = apply_preset(options, "latents", sources={"robust": "no_robust"})
    decomposition = make_decomposition(options)
    found = run(
        anchors_path,
        output=output,
        decomposition=decomposition,
        generator_fingerprint=generator_fingerprint,
        preset=preset,
    )
    mm = found.micromotion
    click.echo(f"wrote {output} (|d| = {mm.norm:.4g}, rank {mm.metadata['rank']})")


@click.command()
@click.argument("specs", metavar="FILE [OTHER]", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
@file_option(
    "--plot",
    metavar="OUT.png",
    help="Also draw a micromotion's per-layer |d| and singular values as a PNG.",
)
def info(specs: tuple[str, ...], as_json: bool, plot: Path | None) -> None:
    """Describe a micromotion or generator FILE (or zoo name); with OTHER, compare networks.

    For a generator: its architecture, fingerprint (the identity of its weights, the same
    from every file format) and the norm of w_avg. With two generators: whether they are
    the same network and, if not, the largest differences in w_avg, the first mapping layer
    and the first noise constant.
    """
    from micromotion.errors import MicromotionError
    from micromotion.pipelines.inspect import compare_generators, describe, plot_file

    if len(specs) > 2:
        raise MicromotionError(f"give one FILE to describe or two to compare, not {len(specs)}")
    if plot is not None and len(specs) != 1:
        raise MicromotionError("--plot draws one micromotion FILE, not a comparison")
    if len(specs) == 2:
        report = compare_generators(*specs)
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        _echo_generator(report["a"])
        _echo_generator(report["b"])
        if report["same"]:
            click.echo("same network: the fingerprints are identical")
            return
        arch = "same architecture" if report["same_architecture"] else "different architectures"
        click.echo(f"different networks ({arch}):")
        for d in report["differences"]:
            click.echo(f"  {d['tensor']}: max |a - b| = {d['max_abs_diff']:.6g} (at {d['at']})")
        return
    if plot is not None:
        click.echo(f"wrote {plot_file(specs[0], plot)}", err=as_json)
    summary = describe(specs[0])
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif summary["kind"] == "generator":
        _echo_generator(summary)
    else:
        _echo_micromotion(summary)


def _echo_generator(summary: dict[str, Any]) -> None:
    cfg = summary["config"]
    click.echo(
        f"{summary['spec']}: StyleGAN2 generator {cfg['img_resolution']} px, "
        f"W+ [{summary['num_ws']}, {summary['w_dim']}], z {cfg['z_dim']}, "
        f"{cfg['mapping_layers']} mapping layers, {summary['parameters']:,} parameters"
    )
    click.echo(f"  fingerprint: {summary['fingerprint']}")
    click.echo(f"  |w_avg|: {summary['w_avg_norm']:.6g}")
    source = summary["source"]
    if source:
        click.echo("  source: " + ", ".join(f"{k} {v}" for k, v in sorted(source.items())))


def _echo_micromotion(summary: dict[str, Any]) -> None:
    meta = summary["metadata"]
    click.echo(
        f"{summary['name']}: W+ [{summary['num_ws']}, {summary['w_dim']}], "
        f"|d| = {summary['norm']:.4g}, layers {summary['layers']}"
    )
    for key in (
        "source",
        "rank",
        "robust",
        "method",
        "template",
        "video",
        "generator_fingerprint",
        "micromotion_version",
        "created",
        "origin",
        "source_url",
        "source_sha256",
        "license",
    ):
        if meta.get(key) is not None:
            click.echo(f"  {key}: {meta[key]}")
    click.echo("  per-layer |d|: " + " ".join(f"{v:.3g}" for v in summary["per_layer_norm"]))
    if "singular_values" in summary:
        click.echo("  singular values (per layer, largest first):")
        for i, row in enumerate(summary["singular_values"]):
            click.echo(f"    {i:2d}: " + " ".join(f"{v:.3g}" for v in row[:8]))


@click.command("import-official")
@click.argument("src", metavar="FILE", type=click.Path(path_type=Path))
@file_option("-o", "--output", required=True)
@click.option("--name", default=None, help="Name to record (default: from the file name).")
def import_official_cmd(src: Path, output: Path, name: str | None) -> None:
    """Import one of the paper's pre-computed d_latent files, bit for bit."""
    from micromotion.core.outputs import check_writes
    from micromotion.errors import MicromotionError
    from micromotion.weights.micromotion import import_official

    if output.suffix != ".safetensors":
        raise MicromotionError(f"{output}: the output must end in .safetensors")
    check_writes({"micromotion": output}, reads=[src])
    mm = import_official(src, name=name)
    mm.save(output)
    click.echo(f"wrote {output} ({mm.name}, |d| = {mm.norm:.4g})")
