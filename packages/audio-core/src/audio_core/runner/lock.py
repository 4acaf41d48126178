"""One process per run folder: an exclusive lock held for the life of a run.

``RUN_DIR/.lock`` is created (with the folder, when it is new) before anything else and
locked with ``fcntl.flock``; the holder writes its PID into it. A second ``audio-run train``
into the same folder, or a second ``--resume`` of it, is refused naming that PID. The
operating system drops the lock when the holder exits, however it exits (``kill -9``
included), so a stale file never blocks a later run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from audio_core.errors import TrainingError
from audio_core.io import umask

LOCK_NAME = ".lock"


class RunLock:
    """The lock of one run folder; :meth:`acquire` takes it, :meth:`release` drops it."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_NAME
        self.created: list[Path] = []  # the folders acquire() made, innermost first
        self._fd: int | None = None

    def acquire(self) -> None:
        """Create the folder if needed and take the lock.

        Raises:
            TrainingError: another process holds it (named by its PID).
        """
        folder, self.created = self.run_dir, []
        while not folder.exists() and folder != folder.parent:
            self.created.append(folder)
            folder = folder.parent
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise TrainingError(
                [
                    f"{self.run_dir}: in use by another audio-run (PID {holder}); wait for it "
                    "to finish or choose another output.name"
                ]
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """After a run that could not start: remove the folders this lock created (the run
        folder, and ``output.root`` when it made that too) if nothing but the lock is in them,
        so a retry with the same name is not blocked and nothing is left behind."""
        self.release()
        if not self.created or {p.name for p in self.run_dir.iterdir()} - {LOCK_NAME}:
            return
        self.path.unlink(missing_ok=True)
        for folder in self.created:
            try:
                folder.rmdir()
            except OSError:  # something else appeared in it meanwhile: keep it
                return


def contents(run_dir: Path) -> list[Path]:
    """The folder's entries other than the lock."""
    if not run_dir.is_dir():
        return []
    return [p for p in run_dir.iterdir() if p.name != LOCK_NAME]
