"""Folders of long wavs: split by file, cut into windows, and their errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from audio_data.config import BeethovenConfig, FolderConfig, YouTubeMixConfig
from audio_data.datasets import build_folder, natural_key, split_files
from audio_data.errors import DataError
from audio_data.testing import tone, write_wav


def make_folder(root: Path, lengths: list[int], rate: int = 16000) -> Path:
    for i, n in enumerate(lengths):
        write_wav(root / f"part{i:02d}.wav", tone(n, 100 + 10 * i, rate=rate), rate=rate)
    return root


def test_beethoven_splits_as_its_dataset_card_by_number() -> None:
    """The card: train 0-3807, validation 3808-4067, test 4068-4327. Sorting the names as
    strings would put 4068.wav ... 4327.wav nowhere near the end."""
    files = [Path(f"beethoven/{i}.wav") for i in range(4328)]
    random.Random(0).shuffle(files)
    splits = split_files(sorted(files, key=natural_key), 0.88)
    numbers = {k: [int(p.stem) for p in v] for k, v in splits.items()}
    assert numbers == {
        "train": list(range(0, 3808)),
        "val": list(range(3808, 4068)),
        "test": list(range(4068, 4328)),
    }


def test_youtubemix_splits_212_14_15_in_natural_order() -> None:
    files = sorted((Path(f"out{i}.wav") for i in range(241)), key=natural_key)
    splits = split_files(files, 0.88)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [212, 14, 15]
    assert splits["val"][0].name == "out212.wav"
    assert splits["test"][-1].name == "out240.wav"


def test_files_split_eighty_eight_percent_then_halves() -> None:
    files = [Path(f"f{i:02d}.wav") for i in range(25)]
    splits = split_files(files, 0.88)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [22, 1, 2]
    assert splits["train"] == files[:22]
    assert splits["val"] == files[22:23]
    assert split_files(files, 0.88) == splits  # deterministic
    assert [len(v) for v in split_files(files[:3], 0.88).values()] == [1, 1, 1]


def test_windows_are_counted_per_file(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "w", [10_000, 25_000, 4_000, 31_000, 9_999])
    data = build_folder(FolderConfig(root=str(root), sample_len=5000, train_percentage=0.6))
    # sorted: part00..part04; train = first 3 (round(0.6 * 5)), val = part03, test = part04
    assert len(data.split("train")) == 10_000 // 5000 + 25_000 // 5000 + 4_000 // 5000
    assert len(data.split("val")) == 31_000 // 5000
    assert len(data.split("test")) == 9_999 // 5000
    codes, label = data.split("val")[5]
    assert codes.shape == (5000,)
    assert label == -1


def test_windows_at_another_rate_are_resampled_to_length(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "r", [8000, 8000, 8000], rate=8000)
    data = build_folder(FolderConfig(root=str(root), sample_len=4000))
    assert len(data.split("train")) == 1 * (16000 // 4000)
    assert data.split("train")[0][0].shape == (4000,)


def test_presets_keep_the_papers_settings() -> None:
    assert (BeethovenConfig().quantization, BeethovenConfig().sample_len) == ("linear", 128_000)
    assert (YouTubeMixConfig().quantization, YouTubeMixConfig().sample_len) == ("mu-law", 131_072)
    assert BeethovenConfig().train_percentage == 0.88


def test_linear_preset_encodes_linearly(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "b", [300, 300, 300])
    data = build_folder(BeethovenConfig(root=str(root), sample_len=100), name="beethoven")
    codes, _ = data.split("train")[0]
    x = data.split("train").audio(0)
    scaled = (x - x.min()) / (x.max() - x.min() + 1e-6)  # each window min-max scaled to [0, 1]
    expected = (scaled * 255.99 + 0.005).long()  # and truncated, as the reference does
    assert torch.equal(codes, expected)
    assert (int(codes.min()), int(codes.max())) == (0, 255)


def test_bad_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no such folder; set dataset.root"):
        build_folder(FolderConfig(root=str(tmp_path / "none")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"holds no .wav files"):
        build_folder(FolderConfig(root=str(tmp_path / "empty")))
    two = make_folder(tmp_path / "two", [100, 100])
    with pytest.raises(DataError, match=r"2 .wav file\(s\); splitting by file needs at least 3"):
        build_folder(FolderConfig(root=str(two)))
    short = make_folder(tmp_path / "short", [100, 100, 100])
    with pytest.raises(DataError, match=r"no train file is as long as dataset.sample_len=16000"):
        build_folder(FolderConfig(root=str(short)))
