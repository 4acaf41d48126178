"""Checkpoints: everything a bit-exact resume needs, written atomically.

A checkpoint is a ``torch.save`` dict with ``schema`` (:data:`SCHEMA`), ``model``,
``optimizer``, ``schedule``, ``step``, ``epoch``, ``batch`` (position inside the epoch),
``best_val``, ``rng`` (torch CPU and CUDA, Python, NumPy when present), ``config`` (the run
config as plain data), ``versions``, ``decode_table`` (class -> waveform value) and
``sample_rate``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from audio_core.errors import ProblemsError

from .files import atomic_write

SCHEMA = 1


class CheckpointError(ProblemsError):
    """A checkpoint that cannot be used (missing, wrong schema, mismatched keys)."""


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover - NumPy is optional here
        pass
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the schema version) to ``path`` atomically."""
    data = {"schema": SCHEMA, **payload}
    atomic_write(path, lambda handle: torch.save(data, handle))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing, unreadable or of another schema.
    """
    if not path.is_file():
        raise CheckpointError([f"{path}: no such checkpoint"])
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        raise CheckpointError([f"{path}: not a readable checkpoint ({exc})"]) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        raise CheckpointError(
            [f"{path}: checkpoint schema {found!r}, this audio-run reads schema {SCHEMA}"]
        )
    return data


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """Load ``state`` into ``model``, refusing with the missing and unexpected keys listed."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = [f"{path}: missing key {k}" for k in missing]
    problems += [f"{path}: unexpected key {k}" for k in unexpected]
    problems += [
        f"{path}: key {k} has shape {tuple(state[k].shape)}, the model expects "
        f"{tuple(own[k].shape)}"
        for k in wrong
    ]
    if problems:
        raise CheckpointError(
            [*problems, f"{path}: the checkpoint does not match the configured model"]
        )
    model.load_state_dict(state)
