"""The package version, read by the build backend and recorded in every file we write."""

__version__ = "0.1.0"
