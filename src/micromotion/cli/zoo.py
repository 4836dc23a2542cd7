"""``micromotion zoo``: list, download and locate pretrained networks and directions."""

from __future__ import annotations

import click

from micromotion import hub as zoo_lib


@click.group()
def zoo() -> None:
    """Pretrained generators and the paper's directions (hash-checked, cached)."""


@zoo.command("list")
@click.option(
    "--kind",
    default="all",
    show_default=True,
    metavar="KIND",
    help="Only entries of this kind: generator, direction, lpips, or all.",
)
def list_cmd(kind: str) -> None:
    """List the registry: name, kind, resolution, whether it is cached, license."""
    entries = zoo_lib.list_entries(kind=None if kind == "all" else kind)
    if not entries:
        click.echo(f"no zoo entries of kind {kind!r}", err=True)
        raise SystemExit(1)
    width = max(len("name"), *(len(e.name) for e in entries))
    click.echo(f"{'name':{width}}  {'kind':9}  {'res':>4}  {'cached':6}  license / description")
    for e in entries:
        res = str(e.resolution or "-")
        cached = "yes" if zoo_lib.is_cached(e) else "no"
        alias = f" (alias: {', '.join(e.aliases)})" if e.aliases else ""
        click.echo(f"{e.name:{width}}  {e.kind:9}  {res:>4}  {cached:6}  {e.license}")
        click.echo(f"{'':{width}}  {'':9}  {'':>4}  {'':6}  {e.description}{alias}")
    click.echo(f"\ncache: {zoo_lib.home() / 'zoo'}  (set MICROMOTION_HOME to move it)")


@zoo.command("download")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=zoo_lib.DEFAULT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for a server at each step.",
)
def download_cmd(names: tuple[str, ...], quiet: bool, timeout: float) -> None:
    """Download each NAME into the cache, verify it, and print the path of the ready file.

    A direction is also converted into a micromotion .safetensors file, whose path is printed.
    """
    from micromotion.weights.assets import fetch_checked

    entries = [zoo_lib.get(name) for name in names]  # a typo fails before any download
    for entry in entries:
        # A file trusted on first use must load as its kind (a generator, a direction...).
        path = fetch_checked(entry, progress=not quiet, timeout=timeout)
        if entry.kind == "direction":
            from micromotion.weights.micromotion import ensure_converted

            path = ensure_converted(path, name=entry.name)
        click.echo(str(path))


@zoo.command("path")
@click.argument("name")
def path_cmd(name: str) -> None:
    """Print where NAME lives in the cache (exit 1 if it is not downloaded yet)."""
    entry = zoo_lib.get(name)
    path = zoo_lib.cache_path(entry)
    # The path goes to stdout even when missing, so scripts can place a hand-downloaded copy.
    click.echo(str(path))
    if not path.is_file():
        click.echo(
            f"{entry.name} is not downloaded yet: micromotion zoo download {entry.name}", err=True
        )
        raise SystemExit(1)
