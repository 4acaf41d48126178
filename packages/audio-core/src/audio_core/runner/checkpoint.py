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

from audio_core.errors import CheckpointError
from audio_core.io import atomic_write

#: Version of the checkpoint layout. 2 (audio-run 0.2): nested kernel / backbone tables in
#: the config and the reference-exact model layouts. Schema 1 files (audio-run 0.1) are
#: refused with a message saying how to go on.
SCHEMA = 2

#: What ``--resume`` reads from a checkpoint.
RESUME_KEYS = ("model", "optimizer", "schedule", "step", "epoch", "batch", "best_val", "rng")
#: What ``audio-run generate`` (and ``test``) read from one.
GENERATE_KEYS = ("model", "config", "decode_table", "sample_rate")

__all__ = [
    "GENERATE_KEYS",
    "RESUME_KEYS",
    "SCHEMA",
    "CheckpointError",
    "check_finite",
    "load_checkpoint",
    "load_model_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]


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


def load_checkpoint(path: Path, *, need: tuple[str, ...] = GENERATE_KEYS) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and check it holds ``need``.

    Raises:
        CheckpointError: the file is missing, unreadable, of another schema, or lacks a key
            (all missing keys named).
    """
    if not path.is_file():
        raise CheckpointError([f"{path}: no such checkpoint"])
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
        raise CheckpointError([f"{path}: not a readable checkpoint ({exc})"]) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        if found == 1:
            raise CheckpointError(
                [
                    f"{path}: checkpoint schema 1 (audio-run 0.1), whose model layouts were "
                    "replaced by the reference's in 0.2; retrain with the run's config.toml "
                    "(move kernel options into [model.kernel], see docs/decisions.md), or "
                    "import a reference checkpoint with `audio-run checkpoint import`"
                ]
            )
        raise CheckpointError(
            [f"{path}: checkpoint schema {found!r}, this audio-run reads schema {SCHEMA}"]
        )
    missing = [key for key in need if key not in data]
    if missing:
        raise CheckpointError(
            [f"{path}: the checkpoint lacks {', '.join(missing)} (made by hand or damaged?)"]
        )
    if "model" in need and not isinstance(data["model"], dict):
        raise CheckpointError([f"{path}: its 'model' is not a state dict"])
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


def check_finite(model: torch.nn.Module, path: Path) -> None:
    """Refuse weights with ``nan`` / ``inf`` (a diverged run's), naming the checkpoint.

    Raises:
        CheckpointError: counting the non-finite values.
    """
    with torch.no_grad():
        bad = sum(
            int((~torch.isfinite(p)).sum())
            for p in model.state_dict().values()
            if p.is_floating_point()
        )
    if bad:
        raise CheckpointError(
            [f"{path}: {bad} of the model's weights are not finite (a diverged run?); use an "
             "earlier checkpoint"]
        )  # fmt: skip
