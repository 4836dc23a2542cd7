"""The ``micromotion`` console script: the CLI with signals as exceptions, Ctrl-C as one line.

This module imports nothing heavy at the top, so an interrupt at any moment of start-up —
even while the CLI's modules load — ends with one line and exit status 130, never a
traceback. SIGTERM and SIGHUP are turned into :class:`Terminated`, an exception, so that
every output in progress is cleaned up exactly as on Ctrl-C (no ``*.part`` file is left),
and the exit status is 128 + the signal number, as a shell reports a killed process.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; unwinds like Ctrl-C, exits with 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def run() -> None:
    """Run the command line (the ``micromotion`` console script)."""
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):  # SIGHUP does not exist on Windows
            signal.signal(getattr(signal, name), _terminate)
    try:
        from micromotion.cli import main

        main(prog_name="micromotion")
    except KeyboardInterrupt as exc:
        name = f" ({exc.args[0]})" if isinstance(exc, Terminated) else ""
        print(f"interrupted{name}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", 130))


if __name__ == "__main__":  # pragma: no cover
    run()
