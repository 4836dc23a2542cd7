"""The ``micromotion`` command line: a thin layer over the public API.

Every subcommand lives in its own module and is registered here. User mistakes
(:class:`~micromotion.errors.MicromotionError`) are printed as one line on stderr with exit
status 1, never as a traceback.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any

import click

from micromotion._version import __version__
from micromotion.cli._common import option_names
from micromotion.errors import MicromotionError, ParameterError


class _Group(click.Group):
    """A click group whose every user error is one line: library errors exit 1, usage errors 2.

    Click's own usage errors (an unknown option, a value out of range) would print a usage
    block, a hint and the error on separate lines; here they are one ``error:`` line that
    names the option, with the exit status click gives them.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help, as click does
            click.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            hint = ""
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                hint = f" (see {ctx.command_path} --help)"
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:  # Ctrl-C while click itself was parsing or prompting
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ParameterError as exc:
            # The library names its parameters (steps); the user typed options (--steps).
            click.echo(f"error: {exc.render(option_names(main))}", err=True)
            sys.exit(1)
        except MicromotionError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt as exc:
            # Ctrl-C, or SIGTERM/SIGHUP turned into an exception by micromotion._entry: the
            # outputs in progress were cleaned up on the way here.
            code = getattr(exc, "exit_code", 130)
            click.echo("interrupted" + (f" ({exc.args[0]})" if code != 130 else ""), err=True)
            sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="micromotion")
def main() -> None:
    """Decode micromotions in StyleGAN latent space and animate faces with them."""
    warnings.showwarning = _show_warning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print library warnings as ``warning: ...`` lines instead of Python's source dump."""
    click.echo(f"warning: {message}", err=True)


def _register() -> None:
    # Imported here so that `micromotion --help` stays fast and each command owns its module.
    from micromotion.cli import (
        align,
        apply,
        baseline,
        batch,
        convert,
        discover_text,
        discover_video,
        evaluate,
        generate,
        invert,
        paper,
        subspace_cmds,
        web,
        zoo,
    )

    commands = (
        generate.generate, apply.apply, invert.invert_cmd, subspace_cmds.discover,
        subspace_cmds.info, subspace_cmds.import_official_cmd, convert.convert, zoo.zoo,
        align.align, batch.batch, web.web, baseline.baseline, evaluate.evaluate_cmd,
        paper.paper,
    )  # fmt: skip
    for command in commands:
        main.add_command(command)
    for sub in (discover_text.discover_text, discover_video.discover_video):
        subspace_cmds.discover.add_command(sub)


_register()
