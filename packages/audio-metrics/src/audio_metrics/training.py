"""Training and testing the SC09 classifier, and reading its checkpoints.

A checkpoint (``best.pt``, ``last.pt``) holds the weights, the classifier config, the class
names, the dataset it was trained on (name and config, so ``evaluate`` finds the training set
without being told) and the training history. It is written atomically.
"""

from __future__ import annotations

import hashlib
import io
import math
import sys
import time
from pathlib import Path
from typing import IO, Any, TextIO

import attrs
import torch
import torch.nn.functional as F
from attrs import frozen
from torch import Tensor

from audio_core.io import dumps_json

from .audio import int16_to_float
from .classifier import SC09Classifier
from .config import ClassifierConfig
from .errors import MetricsError

KIND = "sashimi-sc09-classifier"
SCHEMA = 1


@frozen(kw_only=True)
class TrainSettings:
    """How the classifier is trained (the ``audio-run classifier train`` flags)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    augment: bool = True
    label_smoothing: float = 0.05


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MetricsError(f"--device {name}: CUDA is not available on this machine")
    return torch.device(name)


def augment(x: Tensor, gen: torch.Generator) -> Tensor:
    """Random shift (up to 0.1 s either way, zero-filled), gain (+-6 dB) and, for half the
    clips, white noise at 10-40 dB SNR."""
    b, n = x.shape
    max_shift = n // 10
    shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=gen).tolist()
    out = torch.zeros_like(x)
    for i, s in enumerate(shifts):
        if s >= 0:
            out[i, s:] = x[i, : n - s]
        else:
            out[i, :s] = x[i, -s:]
    gain = 10 ** (torch.empty(b, 1).uniform_(-6, 6, generator=gen) / 20)
    out = out * gain
    power = out.pow(2).mean(dim=1, keepdim=True).clamp_min(1e-10)
    snr = torch.empty(b, 1).uniform_(10, 40, generator=gen)
    noise = torch.randn(b, n, generator=gen) * torch.sqrt(power / 10 ** (snr / 10))
    use = (torch.rand(b, 1, generator=gen) < 0.5).float()
    return out + use * noise


@torch.no_grad()
def logits_of(model: SC09Classifier, waves: Tensor, *, batch: int, device: torch.device) -> Tensor:
    """Logits of every clip (``waves`` int16 or float, ``(n, samples)``), on the CPU."""
    model.eval()
    out = []
    for start in range(0, waves.shape[0], batch):
        x = waves[start : start + batch]
        x = int16_to_float(x) if x.dtype == torch.int16 else x.float()
        out.append(model(x.to(device)).float().cpu())
    return torch.cat(out)


def predict(model: SC09Classifier, waves: Tensor, *, batch: int, device: torch.device) -> Tensor:
    """Predicted class of every clip."""
    return logits_of(model, waves, batch=batch, device=device).argmax(dim=-1)


def confusion(pred: Tensor, target: Tensor, n: int) -> Tensor:
    """``(true, predicted)`` counts."""
    return torch.bincount(target * n + pred, minlength=n * n).reshape(n, n)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    from audio_core.io import atomic_write

    def write(handle: IO[bytes]) -> None:
        torch.save(payload, handle)

    atomic_write(path, write)


def train_classifier(
    config: ClassifierConfig,
    settings: TrainSettings,
    *,
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    labels: tuple[str, ...],
    dataset: dict[str, Any],
    output: Path,
    device: torch.device,
    progress: bool = True,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Train; write ``last.pt`` every epoch and ``best.pt`` at each new best validation
    accuracy (ties: lower validation NLL), with ``history.jsonl``. Returns the best
    checkpoint's payload."""
    from tqdm import tqdm

    from audio_core.versions import package_versions

    out = out if out is not None else sys.stdout
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    model = SC09Classifier(config, len(labels)).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    x_train, y_train = train
    steps_per_epoch = math.ceil(x_train.shape[0] / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.lr, total_steps=total, pct_start=0.15
    )
    output.mkdir(parents=True, exist_ok=True)
    history_path = output / "history.jsonl"
    history_path.write_text("")
    best: dict[str, Any] | None = None
    base = {
        "kind": KIND,
        "schema": SCHEMA,
        "config": attrs.asdict(config),
        "labels": list(labels),
        "dataset": dataset,
        "settings": attrs.asdict(settings),
        "versions": package_versions(),
    }
    bar = tqdm(total=total, unit="step", desc="classifier", disable=not progress, leave=False)
    start = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(x_train.shape[0], generator=gen)
        seen, correct, loss_sum = 0, 0, 0.0
        for step in range(steps_per_epoch):
            index = order[step * settings.batch_size : (step + 1) * settings.batch_size]
            x = int16_to_float(x_train[index])
            if settings.augment:
                x = augment(x, gen)
            y = y_train[index].to(device)
            logits = model(x.to(device))
            loss = F.cross_entropy(logits, y, label_smoothing=settings.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()
            schedule.step()
            seen += y.shape[0]
            correct += int((logits.argmax(-1) == y).sum())
            loss_sum += float(loss.detach()) * y.shape[0]
            bar.update()
            bar.set_postfix(epoch=epoch, loss=f"{loss_sum / seen:.3f}")
        val_logits = logits_of(model, val[0], batch=256, device=device)
        val_acc = float((val_logits.argmax(-1) == val[1]).float().mean())
        val_nll = float(F.cross_entropy(val_logits, val[1]))
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "val_acc": val_acc,
            "val_nll": val_nll,
            "seconds": time.perf_counter() - start,
        }
        with history_path.open("a") as handle:
            handle.write(dumps_json(record) + "\n")
        payload = {
            **base,
            "model": model.state_dict(),
            "epoch": epoch,
            "val_acc": val_acc,
            "val_nll": val_nll,
        }
        save_checkpoint(output / "last.pt", payload)
        # Best: highest validation accuracy; among equals, the lowest validation NLL (the
        # metrics read the probabilities, so a confident classifier beats an early, soft one).
        if best is None or (val_acc, -val_nll) > (best["val_acc"], -best["val_nll"]):
            best = payload
            save_checkpoint(output / "best.pt", payload)
        print(
            f"epoch {epoch}/{settings.epochs}: train loss {record['train_loss']:.4f}, "
            f"train acc {record['train_acc']:.2%}, val acc {val_acc:.2%}, val nll {val_nll:.4f}",
            file=out,
        )
    bar.close()
    assert best is not None
    return best


def load_classifier(
    path: Path, device: torch.device, *, pad_mode: str = "reflect"
) -> tuple[Any, dict[str, Any], str]:
    """The classifier in a checkpoint, in evaluation mode, the checkpoint's payload and the
    SHA-256 of its bytes (the classifier's identity in caches and metrics.json).

    Reads both a checkpoint of ``audio-run classifier train`` and the reference's released
    ``resnext.pth`` (:mod:`audio_metrics.reference_classifier`; ``pad_mode`` is its mel
    front end's STFT padding).

    Raises:
        MetricsError: missing or unreadable file, or not a classifier checkpoint.
    """
    if not path.is_file():
        raise MetricsError(f"{path}: no such classifier checkpoint")
    data = path.read_bytes()
    from .reference_classifier import is_reference_file, load_reference_classifier

    if is_reference_file(data):
        return load_reference_classifier(path, device, pad_mode=pad_mode, data=data)  # type: ignore[arg-type]
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise MetricsError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        raise MetricsError(
            f"{path}: not an SC09 classifier checkpoint (write one with audio-run classifier train)"
        )
    if payload.get("schema") != SCHEMA:
        raise MetricsError(f"{path}: checkpoint schema {payload.get('schema')}, expected {SCHEMA}")
    missing = [k for k in ("config", "labels", "model", "dataset") if k not in payload]
    if missing:
        raise MetricsError(f"{path}: the classifier checkpoint lacks {', '.join(missing)}")
    from audio_core.errors import ConfigError
    from audio_core.resolve import RawConfig, structure_section

    raw = RawConfig()
    raw.set(("config",), dict(payload["config"]), str(path))
    try:
        config = structure_section(None, raw, "config", ClassifierConfig)
    except ConfigError as exc:
        raise MetricsError(f"{path}: its classifier config is invalid: {exc.problems[0]}") from None
    model = SC09Classifier(config, len(payload["labels"]))
    own, saved = model.state_dict(), payload["model"]
    wrong = [k for k in own if k not in saved or tuple(saved[k].shape) != tuple(own[k].shape)]
    extra = [k for k in saved if k not in own]
    if wrong or extra:
        first = (wrong or extra)[0]
        raise MetricsError(
            f"{path}: its weights do not match its config ({len(wrong)} missing or mis-shaped, "
            f"{len(extra)} unexpected; first: {first})"
        )
    model.load_state_dict(saved)
    return model.to(device).eval(), payload, hashlib.sha256(data).hexdigest()
