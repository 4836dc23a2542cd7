"""Each browser session's files in a directory of its own, deleted when the session ends.

Gradio names a session by a hash the *browser* sends, so that hash never becomes part of a
path: each session gets a directory made by :func:`tempfile.mkdtemp` under the app's root,
and the hash is only a key in a table.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

#: Jobs kept per session: older job directories are deleted when a new job starts (their
#: files were copied into Gradio's own cache when they were shown).
KEEP_JOBS = 4


class SessionFiles:
    """Per-session job directories under one root, which nothing else writes into.

    Args:
        root: An existing, private directory (the app's own temporary directory).
        keep_jobs: Job directories kept per session; older ones are deleted.
    """

    def __init__(self, root: str | Path, *, keep_jobs: int = KEEP_JOBS) -> None:
        self.root = Path(root)
        self.keep_jobs = keep_jobs
        self._sessions: dict[str, Path] = {}
        self._jobs: dict[str, list[Path]] = {}
        self._lock = threading.Lock()

    def job_dir(self, session: str | None, kind: str) -> Path:
        """A new, empty directory for one job of ``session`` (``kind`` names it: ``animate``)."""
        key = session or "anonymous"
        with self._lock:
            home = self._sessions.get(key)
            if home is None or not home.is_dir():
                home = self._sessions[key] = Path(
                    tempfile.mkdtemp(prefix="session-", dir=self.root)
                )
            job = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=home))
            jobs = self._jobs.setdefault(key, [])
            jobs.append(job)
            old, jobs[:] = jobs[: -self.keep_jobs], jobs[-self.keep_jobs :]
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
        return job

    def drop(self, session: str | None) -> None:
        """Delete every file of ``session`` (its tab was closed)."""
        key = session or "anonymous"
        with self._lock:
            home = self._sessions.pop(key, None)
            self._jobs.pop(key, None)
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)

    def sessions(self) -> list[str]:
        """The sessions that have files now."""
        with self._lock:
            return list(self._sessions)

    def close(self) -> None:
        """Delete every session's files."""
        with self._lock:
            homes = list(self._sessions.values())
            self._sessions.clear()
            self._jobs.clear()
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
