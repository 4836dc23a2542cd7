"""Errors that are the user's to fix: the CLI prints them on one line, without a traceback."""

from __future__ import annotations


class MicromotionError(Exception):
    """A problem with the user's input or environment, worded as one line for the user."""


class CheckpointError(MicromotionError):
    """A generator or direction file that cannot be read: missing, corrupt, or unsupported."""


class DownloadError(MicromotionError):
    """A download that failed: unreachable server, HTTP error, truncated file, or bad hash."""
