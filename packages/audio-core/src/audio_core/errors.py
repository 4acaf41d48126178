"""The errors ``audio-run`` reports as one line per problem, with exit status 2."""

from __future__ import annotations

from collections.abc import Sequence


class ProblemsError(Exception):
    """A failure made of independent problems; ``problems`` holds one line for each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class PluginError(ProblemsError):
    """Plugins could not be loaded or are invalid."""


class RegistryError(ProblemsError):
    """The plugins' records are inconsistent (invalid records, duplicate names)."""


class ConfigError(ProblemsError):
    """An invalid configuration, or a configuration source that cannot be read."""


class TrainingError(ProblemsError):
    """A run that cannot start or continue (bad run folder, diverged loss, empty split), or a
    generation that cannot run."""


class CheckpointError(ProblemsError):
    """A checkpoint that cannot be used (missing, wrong schema, mismatched keys)."""
