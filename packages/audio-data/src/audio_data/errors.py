"""Data errors: one line that names the path (or field) and what to do about it.

They subclass audio-core's ``ProblemsError``, so ``audio-run`` prints them as
``audio-run: error: ...`` and exits with status 2, without a traceback.
"""

from __future__ import annotations

from audio_core.errors import ProblemsError


class DataError(ProblemsError):
    """A dataset, file or download problem the user can fix."""

    def __init__(self, message: str) -> None:
        super().__init__([message])
