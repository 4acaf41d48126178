"""The error ``audio-run`` reports as one line per problem, exit status 2."""

from __future__ import annotations

from audio_core.errors import ProblemsError


class MetricsError(ProblemsError):
    """Bad input to the classifier or evaluation commands: one line naming the file or flag."""

    def __init__(self, message: str) -> None:
        super().__init__([message])
