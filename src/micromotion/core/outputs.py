"""The one output mechanism: check every write against every read, commit results whole.

A run names all the files it will write before it starts (:class:`OutputSet`), and which files
it reads. :func:`check_writes` then refuses, before any work:

* an output that is one of the run's inputs (paths resolved, links followed, hard links
  caught by inode), or that another output of the same run also writes;
* an output that exists as a directory or as something other than a regular file (a FIFO or
  a device would be replaced by :func:`os.replace`);
* an output whose directory is a file, or not writable.

Inside ``with OutputSet(...)`` every file is written to a hidden temporary file beside its
destination; only when the block succeeds are they renamed into place, so a failure — an
exception, Ctrl-C, or SIGTERM/SIGHUP once the CLI turns them into exceptions — leaves none
of them and no temporary file. :func:`lock_dir` keeps a second run out of a directory that
one run is writing.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType

from micromotion.core.io import StrPath, atomic_path
from micromotion.errors import MicromotionError


def input_files(*specs: object) -> list[Path]:
    """The specs that name existing files (zoo names, loaded objects and ``None`` are skipped)."""
    found = []
    for spec in specs:
        if isinstance(spec, str | os.PathLike):
            path = Path(spec)
            with contextlib.suppress(OSError, ValueError):
                if path.is_file():
                    found.append(path)
    return found


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _writable_ancestor(path: Path) -> Path:
    """The nearest existing directory above ``path`` (``mkdir -p`` starts there)."""
    parent = path.parent if str(path.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_writes(writes: Mapping[str, StrPath], reads: Iterable[object] = ()) -> None:
    """Refuse, before any work, outputs that would destroy an input or cannot be written.

    Args:
        writes: Every file the run will write, by role (``"clip"``, ``"record"``...).
        reads: Every file the run reads (specs that are not files, such as zoo names or
            loaded objects, are ignored).

    Raises:
        MicromotionError: One line naming the path and the problem.
    """
    inputs = [(Path(r), Path(r).resolve(), _identity(Path(r))) for r in input_files(*reads)]
    seen: dict[Path, str] = {}
    for role, raw in writes.items():
        out = Path(raw)
        if out.is_dir():
            raise MicromotionError(f"{out}: is a directory (the {role} file would go there)")
        if out.exists() and not out.is_file():
            raise MicromotionError(f"{out}: exists and is not a regular file")
        parent = _writable_ancestor(out)
        if not parent.is_dir():
            raise MicromotionError(f"{out}: cannot write here ({parent} is not a directory)")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise MicromotionError(f"{out}: cannot write here (directory {parent} is not writable)")
        key = out.resolve()
        if key in seen:
            raise MicromotionError(
                f"{out}: this run would write it twice (as {seen[key]} and as {role}); "
                "give the inputs different names or outputs"
            )
        seen[key] = role
        ident = _identity(out)
        for given, resolved, inode in inputs:
            if key == resolved or (ident is not None and ident == inode):
                raise MicromotionError(
                    f"{given}: would be overwritten by this run's {role} file "
                    f"({out.name}); it is an input, choose another output"
                )


class OutputSet:
    """The files of one result: checked on creation, written whole or not at all.

    Example::

        with OutputSet({"codes": out / "w.npy", "record": out / "w.json"}, reads=[photo]) as o:
            np.save(o.path("codes"), ws)
            o.path("record").write_text(text)
        # both files appear here, or (after an error) neither

    Args:
        files: Every file of the result, by role.
        reads: The run's input files; writing over one is refused.
    """

    def __init__(self, files: Mapping[str, StrPath], *, reads: Iterable[object] = ()) -> None:
        self.files = {role: Path(p) for role, p in files.items()}
        check_writes(self.files, reads)
        self._stack: contextlib.ExitStack | None = None
        self._staged: dict[str, Path] = {}

    def path(self, role: str) -> Path:
        """The temporary path to write ``role`` to (inside the ``with`` block only)."""
        if self._stack is None:
            raise RuntimeError("OutputSet.path() outside its with block")
        if role not in self._staged:
            self._staged[role] = self._stack.enter_context(atomic_path(self.files[role]))
        return self._staged[role]

    def __enter__(self) -> OutputSet:
        self._stack = contextlib.ExitStack().__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        assert stack is not None
        # Unwinding the atomic paths renames each file on success and deletes each temporary
        # file on failure (an error in one rename fails the others too). Nothing in the stack
        # suppresses exceptions, so the result is ignored.
        stack.__exit__(exc_type, exc, tb)


@contextlib.contextmanager
def lock_dir(directory: StrPath) -> Iterator[None]:
    """Hold an exclusive lock on an output directory, or refuse at once if a run holds it.

    The lock is ``flock`` on the directory itself, so no lock file is left behind and a run
    that dies releases it. Where ``flock`` does not exist (Windows) the lock is skipped.

    Raises:
        MicromotionError: If another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = Path(directory)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise MicromotionError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise MicromotionError(
                    f"{path}: another micromotion run is writing to this directory; "
                    "wait for it to finish or choose another output directory"
                ) from None
            raise
        yield
    finally:
        os.close(fd)  # closing releases the lock
        if created:  # a failed run leaves no empty directory it made
            with contextlib.suppress(OSError):
                path.rmdir()
