"""``audio-run test``: a checkpoint's likelihood and accuracy over a whole split.

What the paper reports as test NLL: the mean next-sample cross-entropy over every scored
position of the split, in bits per sample (nats / ln 2), with padding left out; and, as the
reference's audio task logs them, the next-sample accuracy and accuracy@3/5/10 (the target
among the k most likely classes). The model must have ``score_tokens(x, ks)`` returning the
batch's NLL sum, position count and correct counts (audio-models' models do).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from audio_core.config import RunConfig
from audio_core.errors import TrainingError
from audio_core.protocols import missing_members
from audio_core.threads import ThreadChoice, announce

from .checkpoint import check_finite, load_model_state

KS = (1, 3, 5, 10)


def _collate(items: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    return torch.stack([codes for codes, _ in items])


def score_split(
    model: Any,
    dataset: Any,
    *,
    batch_size: int,
    device: torch.device,
    max_batches: int = 0,
    num_workers: int = 0,
    progress: Callable[[int], object] = lambda n: None,
) -> dict[str, Any]:
    """Sum the model's token scores over ``dataset`` (the first ``max_batches`` batches, or
    all) and return the split's figures."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=_collate, num_workers=num_workers
    )
    nats, count, clips = 0.0, 0, 0
    correct = dict.fromkeys(KS, 0)
    model.eval()
    with torch.no_grad():
        for i, x in enumerate(loader):
            if max_batches and i >= max_batches:
                break
            scores = model.score_tokens(x.to(device), KS)
            nats += scores.nats
            count += scores.positions
            for k in KS:
                correct[k] += scores.correct[k]
            clips += x.shape[0]
            progress(x.shape[0])
    if count == 0:
        raise TrainingError(["the split holds no samples to score"])
    return {
        "clips": clips,
        "samples": count,
        "nll_nats": nats / count,
        "bits_per_sample": nats / count / math.log(2),
        "accuracy": correct[1] / count,
        **{f"accuracy@{k}": correct[k] / count for k in KS if k > 1},
    }


def score_checkpoint(
    ckpt: dict[str, Any],
    config: RunConfig,
    *,
    checkpoint: Path,
    split: str,
    batch_size: int,
    max_batches: int = 0,
    progress: bool = True,
    threads: ThreadChoice | None = None,
) -> dict[str, Any]:
    """Build the checkpoint's model and dataset and score ``split`` (``threads``: printed as
    the work starts)."""
    model = config.model.build()
    lacking = missing_members(model, ("score_tokens",))
    if lacking:
        raise TrainingError(
            [f"model {config.model.name!r} has no score_tokens(x, ks); audio-run test needs it"]
        )
    load_model_state(model, ckpt["model"], checkpoint)
    check_finite(model, checkpoint)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    data = config.dataset.build()
    try:
        dataset = data.split(split)
    except ValueError as exc:
        raise TrainingError([f"--split {split}: {exc}"]) from None
    total = len(dataset) if not max_batches else min(len(dataset), max_batches * batch_size)
    if threads is not None:
        announce(threads, quiet=not progress)
    from tqdm import tqdm

    with tqdm(total=total, desc=f"test {split}", unit="clip", disable=not progress,
              file=sys.stderr) as bar:  # fmt: skip
        result = score_split(model, dataset, batch_size=batch_size, device=device,
                             max_batches=max_batches, progress=bar.update)  # fmt: skip
    return {
        "checkpoint": str(checkpoint),
        "step": ckpt.get("step"),
        "model": config.model.name,
        "dataset": config.dataset.name,
        "split": split,
        **result,
    }


def format_report(report: dict[str, Any]) -> list[str]:
    at = "  ".join(f"@{k} {report[f'accuracy@{k}']:.4f}" for k in KS if k > 1)
    return [
        f"{report['model']} on {report['dataset']} {report['split']}: {report['clips']:,} clips, "
        f"{report['samples']:,} samples (checkpoint {report['checkpoint']}, step "
        f"{report['step']})",
        f"NLL        {report['bits_per_sample']:.4f} bits/sample  ({report['nll_nats']:.4f} "
        "nats/sample)",
        f"accuracy   {report['accuracy']:.4f}  {at}",
    ]
