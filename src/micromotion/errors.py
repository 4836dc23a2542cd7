"""Errors that are the user's to fix: the CLI prints them on one line, without a traceback."""

from __future__ import annotations

from collections.abc import Mapping


class MicromotionError(Exception):
    """A problem with the user's input or environment, worded as one line for the user."""


class CheckpointError(MicromotionError):
    """A generator or direction file that cannot be read: missing, corrupt, or unsupported."""


class DownloadError(MicromotionError):
    """A download that failed: unreachable server, HTTP error, truncated file, or bad hash."""


class ParameterError(MicromotionError):
    """A bad value for a named parameter of a library function or settings object.

    The message names the parameter as the library spells it (``steps 0: must be at least
    1``), which reads right in a notebook; a front end that exposes the parameter under
    another name (the CLI's ``--steps``, a web form's label) rewords it with :meth:`render`.

    Attributes:
        params: The parameters the message names, in the library's spelling.
    """

    def __init__(self, param: str, detail: str) -> None:
        self.params: tuple[str, ...] = (param,)
        self._template = "{" + param + "} {detail}"
        self._values = {"detail": detail}
        super().__init__(self.render())

    @classmethod
    def worded(cls, template: str, *params: str, **values: object) -> ParameterError:
        """An error whose message names parameters anywhere: ``{name}`` marks each one.

        Other ``{key}`` fields are filled from ``values`` (file names, numbers), never
        parsed again, so a path with braces in it cannot break the message.

        Example:
            ``ParameterError.worded("{path}: pick fewer with {frames} N or a larger {every} K",
            "frames", "every", path=path)``
        """
        error = cls.__new__(cls)
        error.params = params
        error._template = template
        error._values = {k: str(v) for k, v in values.items()}
        MicromotionError.__init__(error, error.render())
        return error

    def render(self, names: Mapping[str, str] | None = None) -> str:
        """The message with each parameter called ``names[param]`` (default: as is)."""
        names = names or {}
        return self._template.format(**self._values, **{p: names.get(p, p) for p in self.params})
