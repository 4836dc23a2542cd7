"""``micromotion convert``: any supported checkpoint → micromotion ``.safetensors``."""

from __future__ import annotations

from pathlib import Path

import click

from micromotion.core.outputs import check_writes
from micromotion.errors import MicromotionError


@click.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--to",
    "target",
    type=click.Choice(["safetensors", "rosinality"]),
    default=None,
    help="Output format (default: from DST's suffix; .safetensors is micromotion's own).",
)
def convert(src: Path, dst: Path, target: str | None) -> None:
    """Convert generator checkpoint SRC (.pkl, .pt, .safetensors) to DST."""
    from micromotion.weights.generator import read_generator_file, save_generator, save_rosinality

    if target is None:
        if dst.suffix == ".safetensors":
            target = "safetensors"
        elif dst.suffix in (".pt", ".pth"):
            target = "rosinality"
        else:
            raise MicromotionError(f"{dst}: use a .safetensors or .pt suffix, or pass --to")
    check_writes({"converted": dst}, reads=[src])
    G = read_generator_file(src)
    if target == "safetensors":
        save_generator(G, dst, extra={"converted_from": str(src)})
    else:
        save_rosinality(G, dst)
    click.echo(f"{src} -> {dst} ({target}, fingerprint {G.fingerprint()[:16]})")
