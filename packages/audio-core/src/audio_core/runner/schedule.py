"""Learning-rate schedules whose whole state is a small dict (for bit-exact resumes).

The rate of each optimizer group is ``base_lr(group) * factor``, where ``factor`` is the
linear warm-up times ``plateau`` (multiplied by ``factor`` after ``patience`` validations
without a new best), a ``cosine`` decay to ``min_lr`` over ``max_steps``, or 1 (``constant``).
"""

from __future__ import annotations

import math
from typing import Any

import torch


class LRSchedule:
    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        name: str,
        warmup_steps: int,
        max_steps: int,
        patience: int,
        factor: float,
        min_lr: float,
    ) -> None:
        self.optimizer = optimizer
        self.name, self.warmup, self.max_steps = name, warmup_steps, max_steps
        self.patience, self.decay, self.min_lr = patience, factor, min_lr
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.plateau_scale = 1.0
        self.best = math.inf
        self.bad = 0
        self.apply(0)

    def factor(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        if self.name == "plateau":
            return warm * self.plateau_scale
        if self.name == "cosine":
            progress = min(1.0, step / max(1, self.max_steps))
            return warm * (0.5 * (1 + math.cos(math.pi * progress)))
        return warm

    def apply(self, step: int) -> None:
        """Set every group's rate for ``step``."""
        f = self.factor(step)
        for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
            lr = base * f
            if self.name == "cosine":
                lr = self.min_lr + (base - self.min_lr) * f if base > self.min_lr else base
            group["lr"] = lr

    def validated(self, value: float) -> None:
        """Report a validation result (lower is better) to the plateau rule."""
        if value < self.best:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
            if self.name == "plateau" and self.bad > self.patience:
                self.plateau_scale *= self.decay
                self.bad = 0

    def state_dict(self) -> dict[str, Any]:
        return {"plateau_scale": self.plateau_scale, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_scale, self.best, self.bad = (
            state["plateau_scale"],
            state["best"],
            state["bad"],
        )
