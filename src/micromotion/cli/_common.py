"""Options and helpers shared by CLI commands."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import click

T = TypeVar("T")


def ours_or_papers(flag: str, ours: str, text: str) -> Any:
    """An option choosing between our way (``ours``, the default) and the paper code's."""
    return click.option(
        flag, type=click.Choice([ours, "paper"]), default=ours, show_default=True, help=text
    )


def decomposition_options(func: Any) -> Any:
    """``--rank``, ``--method``, ``--layers`` and ``--name``: how anchors become a micromotion."""
    options = [
        click.option(
            "--rank", default="4", show_default=True, help="Low rank k (the paper: 4) or auto."
        ),
        click.option(
            "--method",
            type=click.Choice(["endpoints", "slope", "robust-slope"]),
            default=None,
            help="How to read the direction off the denoised anchors  [default: library's]",
        ),
        click.option(
            "--layers", default=None, metavar="LIST", help="Layers the edit moves, e.g. 0-7."
        ),
        click.option(
            "--end-anchor",
            type=int,
            default=-1,
            show_default=True,
            metavar="INDEX",
            help="Anchor the motion ends at (-1: the last; -2: the second-to-last, the paper "
            "code's slip, which ended its text direction at the '90%' anchor).",
        ),
        click.option("--name", default=None, help="Name to record (default: the output's stem)."),
        ours_or_papers(
            "--rpca",
            "converged",
            "Robust PCA run to convergence, or the paper code's fixed mu and stopping rule "
            "(it stops after a few iterations).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def preset_option(func: Any = None, *, help: str | None = None) -> Any:
    """``--preset paper``: every setting of the paper's code at once; explicit options win.

    Args:
        func: The command (``@preset_option``), or ``None`` for ``@preset_option(help=...)``.
        help: The option's help, where the command's preset sets other things than a
            discovery's (``apply``).
    """

    def decorate(f: Any) -> Any:
        return click.option(
            "--preset",
            type=click.Choice(["paper"]),
            default=None,
            help=help
            or "Every setting as the paper's code had it: its RPCA, rank 4, endpoints (for text "
            "and latents ending at the second-to-last anchor, its code's '90%' slip); for text "
            "also raw CLIP input, degrees, steps, lr, lambdas, truncation, seed. Options given as "
            "well override it; the file records which.",
        )(f)

    return decorate(func) if func is not None else decorate


def apply_preset(
    job: dict[str, Any], source: str, *, sources: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """Fill ``job`` with the values of ``job["preset"]`` for options the user did not give.

    Options typed on the command line (or set through the environment) win over the preset;
    each one that changes a preset value is named on stderr and recorded as an override.

    Args:
        job: The command's options by library parameter name; ``preset`` is removed from it,
            and every setting of the preset is set in it.
        source: ``text``, ``video`` or ``latents``; for ``apply``, ``render-official`` or
            ``render-text`` (:func:`~micromotion.pipelines.animate.preset_render`).
        sources: Library parameter → the click parameter that gave it, where they differ
            (``robust`` ← ``no_robust``).

    Returns:
        The preset's record for the pipeline, or ``None`` without ``--preset``.
    """
    name = job.pop("preset")
    if name is None:
        return None
    from click.core import ParameterSource

    from micromotion.pipelines.discover import parse_rank
    from micromotion.pipelines.presets import override_texts, resolve_preset

    ctx = click.get_current_context()
    if "rank" in job:  # discoveries only: "4" on the command line, 4 in the preset
        job["rank"] = parse_rank(job["rank"])
    typed = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    renamed = sources or {}
    given = {
        key: value
        for key, value in job.items()
        if ctx.get_parameter_source(renamed.get(key, key)) in typed
    }
    resolved = resolve_preset(name, source, given)  # type: ignore[arg-type]
    job.update(resolved.values)
    flags = option_names(ctx.command)  # type: ignore[arg-type]
    for key, given_text, preset_text in override_texts(resolved.record):
        flag = flags.get(renamed.get(key, key), key)
        click.echo(f"note: {flag} {given_text} overrides --preset {name} ({preset_text})", err=True)
    return resolved.record


def make_decomposition(options: dict[str, Any], **values: Any) -> Any:
    """The :class:`~micromotion.pipelines.discover.Decomposition` of the shared options.

    Args:
        options: The command's options; ``rank``, ``method``, ``layers``, ``name``,
            ``end_anchor`` and ``rpca`` are removed from it.
        **values: Further fields (``robust``, ``center``).
    """
    from micromotion.pipelines.discover import Decomposition, parse_rank

    return settings_from(Decomposition, options, rank=parse_rank(options.pop("rank")), **values)


def device_option(func: Any) -> Any:
    """The ``--device`` option."""
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        metavar="DEVICE",
        help="auto, cpu, cuda or cuda:N.",
    )(func)


def truncation_option(func: Any) -> Any:
    """The ``--truncation`` option (psi toward the average face)."""
    return click.option(
        "--truncation",
        "truncation_psi",
        type=click.FloatRange(0.0, 2.0),
        default=0.7,
        show_default=True,
        help="Truncation psi toward the average face (0.7: the paper's start faces).",
    )(func)


def inversion_options(*, steps_help: str | None = None, lpips_help: str) -> Any:
    """``--steps`` (projector steps, 500) and ``--lpips/--no-lpips``, shared by every inverter."""

    def decorate(func: Any) -> Any:
        func = click.option("--lpips/--no-lpips", "lpips", default=None, help=lpips_help)(func)
        return click.option(
            "--steps", type=click.IntRange(1), default=500, show_default=True, help=steps_help
        )(func)

    return decorate


def no_align_option(help_text: str) -> Any:
    """``--no-align``: the input shows FFHQ-aligned face crops already."""
    return click.option("--no-align", is_flag=True, help=help_text)


def face_option(help_text: str = "Which face (0 = largest).") -> Any:
    """``--face N``: which face of a photo with several."""
    return click.option("--face", type=click.IntRange(0), default=None, help=help_text)


DEFAULT_GENERATOR = "ffhq"
"""The generator ``apply`` uses when none is named: the paper's FFHQ 1024 px StyleGAN2."""


def generator_option(func: Any = None, *, default: str | None = None) -> Any:
    """The ``--generator`` option; required unless a ``default`` zoo name is given."""

    def decorate(f: Any) -> Any:
        return click.option(
            "--generator",
            "generator",
            required=default is None,
            default=default,
            show_default=default is not None,
            metavar="SPEC",
            help="Checkpoint file (.pkl, .pt, .safetensors) or zoo name "
            "(see `micromotion zoo list`).",
        )(f)

    return decorate(func) if func is not None else decorate


#: Library parameters whose option is spelt differently (the rest match by name).
_ALIASES = {"align": "--no-align"}


def option_names(group: click.Group) -> dict[str, str]:
    """Map library parameter names to this CLI's options: ``steps`` → ``--steps``.

    Every option of every command is found under its Python name and under its long flag
    spelt as an identifier (``--next-steps`` → ``next_steps``), so a
    :class:`~micromotion.errors.ParameterError` from any layer can be shown in the user's
    terms.
    """
    names = dict(_ALIASES)
    todo: list[click.Command] = [group]
    while todo:
        command = todo.pop()
        if isinstance(command, click.Group):
            todo.extend(command.commands.values())
        for param in command.params:
            if not isinstance(param, click.Option):
                continue
            flag = max(param.opts, key=len)
            keys = [param.name or ""] + [o.lstrip("-").replace("-", "_") for o in param.opts]
            for key in keys:
                names.setdefault(key, flag)
    return names


def settings_from(cls: type[T], options: dict[str, Any], **values: Any) -> T:
    """Build the settings dataclass ``cls`` from the options named as its fields.

    The options used are removed from ``options``, so what is left can pass on to the pipeline
    by name. ``values`` set fields whose option is spelt differently or needs parsing.

    Args:
        cls: A dataclass such as :class:`~micromotion.inversion.InversionConfig`.
        options: The command's options by parameter name; used ones are removed.
        **values: Fields given directly; they win over options of the same name.
    """
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    picked = {k: options.pop(k) for k in list(options) if k in names}
    return cls(**{**picked, **values})


def encoder_options(func: Any) -> Any:
    """``--inverter``, ``--alignment``, ``--iterations``, ``--refine``: face → code."""
    options = [
        click.option(
            "--inverter",
            default="auto",
            show_default=True,
            metavar="NAME|CKPT|projector",
            help="auto: the paper's ReStyle-pSp (restyle-psp-ffhq) for the paper's network "
            "(ffhq), the projector for any other; or restyle-e4e-ffhq, e4e-ffhq, psp-ffhq, an "
            "encoder checkpoint (.pt), projector.",
        ),
        ours_or_papers(
            "--alignment",
            "ours",
            "What the encoder sees: our FFHQ crop averaged to 256 px, or the paper code's "
            "(the recipe straight to 256 px).",
        ),
        # (name, smallest value, default, help)
        *(
            click.option(
                name, type=click.IntRange(low), default=default, show_default=True, help=text
            )
            for name, low, default, text in (
                ("--iterations", 1, 5, "ReStyle iterations (e4e and pSp run once)."),
                ("--refine", 0, 0, "Projector steps from the encoder's code (0: none)."),
            )
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def file_option(
    *names: str, metavar: str | None = None, help: str | None = None, required: bool = False
) -> Any:
    """An option naming one file (not a folder), as a :class:`~pathlib.Path`."""
    return click.option(
        *names,
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        required=required,
        metavar=metavar,
        help=help,
    )


def start_code_options(func: Any) -> Any:
    """``--latent W.npy`` and ``--index I``: start from a saved W+ code instead of a seed."""
    func = click.option(
        "--index", type=int, default=None, help="Row of --latent when it holds several."
    )(func)
    return file_option("--latent", help="Start from this W+ code (.npy) instead of --seed.")(func)


def clip_option(help: str, default: str) -> Any:
    """The ``--clip MODEL:WEIGHTS`` option (see ``discover text --help``)."""
    return click.option(
        "--clip", default=default, show_default=True, metavar="MODEL:WEIGHTS", help=help
    )


def id_weights_option(help: str) -> Any:
    """The ``--id-weights IR_SE50.pth`` option: ArcFace weights, off without."""
    return file_option("--id-weights", metavar="IR_SE50.pth", help=help)
