"""Classifier features of a set of clips, cached on disk.

A set's features (penultimate activations, softmax probabilities, names, labels) are stored
under a key made of the classifier's SHA-256 and the set's identity: for a folder, its absolute
path and every wav's name, size and modification time; for a dataset split, the dataset's name,
config and split, and each file's size and time where the dataset lists files. Changing the
classifier or any clip therefore recomputes; evaluating the same folder again does not.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from .audio import Batch
from .classifier import SC09Classifier
from .errors import MetricsError
from .suite import Features


def default_cache_dir() -> Path:
    """``$AUDIO_METRICS_CACHE``, else ``$XDG_CACHE_HOME/sashimi-audio-metrics``, else
    ``~/.cache/sashimi-audio-metrics``."""
    if os.environ.get("AUDIO_METRICS_CACHE"):
        return Path(os.environ["AUDIO_METRICS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sashimi-audio-metrics"


def folder_key(classifier_hash: str, files: Iterable[Path]) -> dict[str, Any]:
    listing = []
    folder = None
    for path in files:
        stat = path.stat()
        folder = str(path.parent.resolve())
        listing.append([path.name, stat.st_size, stat.st_mtime_ns])
    return {"classifier": classifier_hash, "folder": folder, "files": listing}


def split_key(
    classifier_hash: str, dataset: str, config: dict[str, Any], split: str, files: Any
) -> dict[str, Any]:
    listing = []
    for entry in files or ():
        path = Path(entry[0])
        try:
            stat = path.stat()
        except OSError:
            continue
        listing.append([str(path), stat.st_size, stat.st_mtime_ns])
    return {
        "classifier": classifier_hash,
        "dataset": dataset,
        "config": config,
        "split": split,
        "files": listing,
    }


@torch.no_grad()
def extract(
    model: SC09Classifier,
    batches: Iterable[Batch],
    *,
    device: torch.device,
    progress: Callable[[int], object] = lambda n: None,
) -> Features:
    """Run the classifier over every batch."""
    model.eval()
    acts, probs, labels, names = [], [], [], []
    for waves, y, batch_names in batches:
        h, p = model.features(waves.to(device))
        acts.append(h.double().cpu().numpy())
        probs.append(p.double().cpu().numpy())
        labels.append(y.numpy())
        names.extend(batch_names)
        progress(len(batch_names))
    label_array = np.concatenate(labels).astype(np.int64)
    return Features(
        np.concatenate(acts),
        np.concatenate(probs),
        tuple(names),
        None if np.all(label_array < 0) else label_array,
    )


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def load_cached(cache: Path, key: dict[str, Any]) -> Features | None:
    path = cache / f"{_digest(key)}.npz"
    if not path.is_file():
        return None
    try:
        # from bytes: np.load leaks its file handle when the zip is damaged
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
            if str(data["key"]) != json.dumps(key, sort_keys=True):
                return None
            labels = data["labels"] if bool(data["has_labels"]) else None
            return Features(
                data["activations"], data["probs"], tuple(str(n) for n in data["names"]), labels
            )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # a damaged entry is recomputed and replaced


def store(cache: Path, key: dict[str, Any], features: Features) -> Path:
    from audio_core.io import atomic_write

    path = cache / f"{_digest(key)}.npz"
    buffer = io.BytesIO()
    np.savez(
        buffer,
        key=np.array(json.dumps(key, sort_keys=True)),
        activations=features.activations,
        probs=features.probs,
        names=np.array(features.names, dtype=str),
        labels=features.labels if features.labels is not None else np.zeros(0, np.int64),
        has_labels=np.array(features.labels is not None),
    )

    def write(handle: IO[bytes]) -> None:
        handle.write(buffer.getvalue())

    atomic_write(path, write)
    return path


def cached_features(
    key: dict[str, Any], compute: Callable[[], Features], cache: Path | None
) -> tuple[Features, bool]:
    """``(features, True)`` from the cache, or ``(compute(), False)`` stored there.
    ``cache=None`` turns caching off.

    Raises:
        MetricsError: ``cache`` exists and is not a folder.
    """
    if cache is not None and cache.exists() and not cache.is_dir():
        raise MetricsError(f"--cache-dir {cache}: not a folder (pass a folder, or --no-cache)")
    if cache is not None:
        found = load_cached(cache, key)
        if found is not None:
            return found, True
    features = compute()
    if cache is not None:
        store(cache, key, features)
    return features, False
