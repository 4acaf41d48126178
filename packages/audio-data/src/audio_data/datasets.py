"""The datasets: SC09 (both layouts), folders of long wavs, and the built-in ``sc09-synth``.

Every builder returns an :class:`AudioData`: one ``torch.utils.data.Dataset`` per split, whose
items are ``(codes, label)`` with ``codes`` an ``int64`` tensor of ``sample_len`` classes
(:data:`~audio_core.protocols.IGNORE_INDEX` where a short clip is padded) and ``label`` the
class index (SC09's word, ``-1`` for unlabelled music). Nothing random happens
in a dataset, so any number of DataLoader workers yields the same items; ``seed_worker`` is
there for augmentations that do draw random numbers.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from attrs import frozen
from torch import Tensor
from torch.utils.data import Dataset

from audio_core.protocols import IGNORE_INDEX

from . import quantize
from .audio import ResampleRule, audio_info, load_audio
from .config import FolderConfig, SC09Config, SC09SynthConfig
from .errors import DataError
from .synth import WORDS, is_complete, make_sc09_synth

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: seed ``random`` and NumPy in each worker
    from torch's per-worker seed, so augmentations differ across workers but repeat across
    runs with the same generator."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed + worker_id)
    np.random.seed((seed + worker_id) % 2**32)


@frozen
class Encoding:
    """How waveforms become classes (:mod:`audio_data.quantize`)."""

    bits: int = 8
    quantization: quantize.Quantization = "mu-law"
    scheme: quantize.Scheme = "reference"

    def encode(self, x: Tensor) -> Tensor:
        return quantize.encode(x, quantization=self.quantization, bits=self.bits,
                               scheme=self.scheme)  # fmt: skip

    def decode(self, q: Tensor) -> Tensor:
        return quantize.decode(q, quantization=self.quantization, bits=self.bits,
                               scheme=self.scheme)  # fmt: skip


def fit_length(x: Tensor, length: int, value: float = 0.0) -> Tensor:
    """Pad at the end with ``value`` or keep the first ``length`` samples."""
    if x.shape[-1] >= length:
        return x[..., :length]
    return torch.nn.functional.pad(x, (0, length - x.shape[-1]), value=value)


class ClipDataset(Dataset[tuple[Tensor, int]]):
    """Whole clips, padded or cropped to ``sample_len``."""

    def __init__(
        self,
        files: Sequence[tuple[Path, int]],
        *,
        sample_len: int,
        sample_rate: int,
        resample: ResampleRule,
        encoding: Encoding,
    ) -> None:
        self.files = list(files)
        self.sample_len, self.sample_rate, self.resample = sample_len, sample_rate, resample
        self.encoding = encoding

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> Tensor:
        path, _ = self.files[index]
        return load_audio(path, sample_rate=self.sample_rate, resample=self.resample)

    def audio(self, index: int) -> Tensor:
        """The waveform of item ``index`` in ``[-1, 1]``, ``sample_len`` samples (zero-padded)."""
        return fit_length(self._load(index), self.sample_len)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        """The clip's codes, quantised at its own length (as the reference does: its min-max
        scaling sees only real samples), then padded with :data:`IGNORE_INDEX` so that the
        loss and the likelihoods leave the padding out."""
        x = self._load(index)[: self.sample_len]
        codes = fit_length(self.encoding.encode(x), self.sample_len, IGNORE_INDEX)
        return codes, self.files[index][1]


class WindowDataset(Dataset[tuple[Tensor, int]]):
    """Non-overlapping windows of ``sample_len`` samples cut from long files."""

    def __init__(
        self,
        windows: Sequence[tuple[Path, int, int]],
        *,
        sample_len: int,
        sample_rate: int,
        resample: ResampleRule,
        encoding: Encoding,
    ) -> None:
        self.windows = list(windows)  # (path, start frame, frames), at the file's own rate
        self.sample_len, self.sample_rate, self.resample = sample_len, sample_rate, resample
        self.encoding = encoding

    def __len__(self) -> int:
        return len(self.windows)

    def audio(self, index: int) -> Tensor:
        path, start, frames = self.windows[index]
        x = load_audio(
            path, sample_rate=self.sample_rate, resample=self.resample, start=start, frames=frames
        )
        return fit_length(x, self.sample_len)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.encoding.encode(self.audio(index)), -1


@frozen
class AudioData:
    """A built dataset: its splits and how to read them.

    Attributes:
        name: the registry name. splits: ``train``, ``val``, ``test`` datasets.
        labels: class names (SC09's words), empty for music.
        sample_rate, sample_len: of every item. encoding: bits, quantisation, min-max flag.
    """

    name: str
    splits: dict[str, Dataset[tuple[Tensor, int]]]
    labels: tuple[str, ...]
    sample_rate: int
    sample_len: int
    encoding: Encoding

    def split(self, name: Split) -> Dataset[tuple[Tensor, int]]:
        if name not in self.splits:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {name!r}")
        return self.splits[name]


# -- SC09 -----------------------------------------------------------------------------------
def find_sc09_root(root: Path) -> Path:
    """The folder holding the digit folders: ``root`` itself or its ``sc09`` subfolder."""
    if not root.exists():
        raise DataError(
            f"{root}: no such folder; download SC09 with 'audio-run data download sc09 --root "
            f"{root}' or set dataset.root"
        )
    for candidate in (root, root / "sc09"):
        if all((candidate / word).is_dir() for word in WORDS):
            return candidate
    missing = [w for w in WORDS if not (root / w).is_dir()]
    raise DataError(
        f"{root}: not an SC09 or Speech Commands folder (no {', '.join(missing[:3])}"
        f"{'...' if len(missing) > 3 else ''} subfolders); point dataset.root at the folder "
        "that holds zero/ ... nine/"
    )


def _read_list(path: Path, base: Path) -> set[str]:
    if not path.is_file():
        raise DataError(
            f"{path}: missing; the SC09 layout needs validation_list.txt and testing_list.txt "
            "next to the word folders"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte {exc.start}); the list names files as "
            "word/file.wav lines"
        ) from None
    entries = set()
    for number, line in enumerate(text.splitlines(), 1):
        rel = line.strip()
        if not rel or rel.split("/", 1)[0] not in WORDS:
            continue  # Speech Commands lists every word; only digits matter here
        if not (base / rel).is_file():
            raise DataError(f"{path}:{number}: names {rel}, which does not exist under {base}")
        entries.add(rel)
    return entries


def sc09_splits(root: Path) -> dict[str, list[tuple[Path, int]]]:
    """``(path, label)`` per split for an SC09 (or full Speech Commands) folder.

    Validation and test files are those named by ``validation_list.txt`` and
    ``testing_list.txt`` (digit words only); training is every other digit clip.
    """
    base = find_sc09_root(root)
    val = _read_list(base / "validation_list.txt", base)
    test = _read_list(base / "testing_list.txt", base)
    splits: dict[str, list[tuple[Path, int]]] = {s: [] for s in SPLITS}
    for label, word in enumerate(WORDS):
        for path in sorted((base / word).glob("*.wav")):
            rel = f"{word}/{path.name}"
            split = "test" if rel in test else "val" if rel in val else "train"
            splits[split].append((path, label))
    if not splits["train"]:
        raise DataError(f"{base}: the word folders hold no .wav files; is the download complete?")
    return splits


def _training_files(
    splits: dict[str, list[tuple[Path, int]]], config: SC09Config
) -> dict[str, list[tuple[Path, int]]]:
    if config.train_on == "all":
        return {**splits, "train": [item for s in SPLITS for item in splits[s]]}
    return splits


def _sc09(name: str, config: SC09Config) -> AudioData:
    encoding = Encoding(config.bits, config.quantization, config.scheme)
    splits = {
        split: ClipDataset(
            files,
            sample_len=config.sample_len,
            sample_rate=config.sample_rate,
            resample=config.resample,
            encoding=encoding,
        )
        for split, files in _training_files(sc09_splits(Path(config.root)), config).items()
    }
    return AudioData(name, dict(splits), WORDS, config.sample_rate, config.sample_len, encoding)


def build_sc09(config: SC09Config) -> AudioData:
    """The ``sc09`` dataset (target of its record)."""
    return _sc09("sc09", config)


def build_sc09_synth(
    config: SC09SynthConfig, *, progress: Callable[[int], None] | None = None
) -> AudioData:
    """The ``sc09-synth`` dataset; writes it first if ``root`` lacks a complete copy."""
    root = Path(config.root)
    if not is_complete(root, config.per_class):
        if root.exists() and any(root.iterdir()) and not (root / ".sc09-synth-complete").exists():
            raise DataError(
                f"{root}: exists but is not an sc09-synth folder; choose another dataset.root"
            )
        print(
            f"note: writing sc09-synth ({config.per_class} clips per word) to {root}",
            file=sys.stderr,
        )
        make_sc09_synth(root, per_class=config.per_class, force=root.exists(), progress=progress)
    return _sc09("sc09-synth", config)


# -- folders of long wavs -------------------------------------------------------------------
def natural_key(path: Path) -> list[object]:
    """Sort key putting ``2.wav`` before ``10.wav`` (natsort's order, the reference's)."""
    text = path.as_posix()
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def folder_files(root: Path) -> list[Path]:
    """The ``*.wav`` files under ``root``, in natural order."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; set dataset.root to a folder of .wav files")
    files = sorted(root.rglob("*.wav"), key=natural_key)
    if not files:
        raise DataError(f"{root}: holds no .wav files; set dataset.root to a folder of .wav files")
    return files


def split_files(files: Sequence[Path], train_percentage: float) -> dict[str, list[Path]]:
    """The reference's split by position in natural order: training ``[0, int(p n))``,
    validation ``[int(p n), int((p + (1 - p) / 2) n))``, test the rest.

    On the published datasets this is their cards' split: Beethoven's ``0.wav`` ...
    ``4327.wav`` give train 0-3807, validation 3808-4067, test 4068-4327; YouTubeMix's 241
    files 212 / 14 / 15. A folder too small for that to give every split a file keeps at
    least one in each.
    """
    n = len(files)
    if n < 3:
        raise DataError(
            f"{files[0].parent if files else 'folder'}: {n} .wav file(s); splitting by file "
            "needs at least 3 (cut long recordings into several files)"
        )
    end_train = min(n - 2, max(1, int(train_percentage * n)))
    end_val = min(
        n - 1, max(end_train + 1, int((train_percentage + (1 - train_percentage) / 2) * n))
    )
    return {
        "train": list(files[:end_train]),
        "val": list(files[end_train:end_val]),
        "test": list(files[end_val:]),
    }


def windows_of(path: Path, sample_len: int, sample_rate: int) -> list[tuple[Path, int, int]]:
    """``(path, start, frames)`` of each whole window, in the file's own frames."""
    frames, rate = audio_info(path)
    per_window = round(sample_len * rate / sample_rate)
    return [(path, i * per_window, per_window) for i in range(frames // per_window)]


def build_folder(config: FolderConfig, *, name: str = "folder") -> AudioData:
    """A folder of wavs (``folder``, ``beethoven`` and ``youtubemix``)."""
    encoding = Encoding(config.bits, config.quantization, config.scheme)
    by_split = split_files(folder_files(Path(config.root)), config.train_percentage)
    splits: dict[str, Dataset[tuple[Tensor, int]]] = {}
    for split, files in by_split.items():
        windows = [w for f in files for w in windows_of(f, config.sample_len, config.sample_rate)]
        if not windows:
            raise DataError(
                f"{Path(config.root)}: no {split} file is as long as dataset.sample_len="
                f"{config.sample_len} samples; lower it or add longer files"
            )
        splits[split] = WindowDataset(
            windows,
            sample_len=config.sample_len,
            sample_rate=config.sample_rate,
            resample=config.resample,
            encoding=encoding,
        )
    return AudioData(name, splits, (), config.sample_rate, config.sample_len, encoding)


def build_beethoven(config: FolderConfig) -> AudioData:
    return build_folder(config, name="beethoven")


def build_youtubemix(config: FolderConfig) -> AudioData:
    return build_folder(config, name="youtubemix")
