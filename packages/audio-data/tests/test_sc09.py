"""SC09 in both layouts: discovery, splits, the length rule, labels, and bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_data.config import SC09Config
from audio_data.datasets import build_sc09, fit_length, sc09_splits
from audio_data.errors import DataError
from audio_data.synth import WORDS
from audio_data.testing import tone, write_wav


def paths(split: list[tuple[Path, int]]) -> set[str]:
    return {f"{p.parent.name}/{p.name}" for p, _ in split}


def test_the_published_layout_splits_by_the_two_lists(make_sc09: Callable[..., Path]) -> None:
    root = make_sc09()
    splits = sc09_splits(root)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [10, 10, 10]
    assert all(p.name == "spk1_nohash_0.wav" for p, _ in splits["val"])
    assert all(p.name == "spk2_nohash_0.wav" for p, _ in splits["test"])
    sets = [paths(splits[s]) for s in ("train", "val", "test")]
    assert not (sets[0] & sets[1])
    assert not (sets[0] & sets[2])
    assert not (sets[1] & sets[2])
    assert splits == sc09_splits(root)  # deterministic
    assert {label for _, label in splits["train"]} == set(range(10))
    assert all(WORDS[label] == p.parent.name for p, label in splits["train"])


def test_training_on_all_clips_keeps_the_held_out_splits(make_sc09: Callable[..., Path]) -> None:
    root = make_sc09()
    split = build_sc09(SC09Config(root=str(root)))
    every = build_sc09(SC09Config(root=str(root), train_on="all"))
    assert len(every.split("train")) == 30  # the reference's DiffWave trains on every clip
    for name in ("val", "test"):
        assert len(every.split(name)) == len(split.split(name)) == 10
    with pytest.raises(ValueError, match="train_on"):
        SC09Config(train_on="both")  # type: ignore[arg-type]


def test_a_full_speech_commands_folder_yields_only_the_digits(
    make_sc09: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_sc09("speech_commands", extra_words=("yes", "no", "marvin"))
    splits = sc09_splits(root)
    words = {p.parent.name for split in splits.values() for p, _ in split}
    assert words == set(WORDS)
    assert len(splits["val"]) == 10


def test_the_sc09_subfolder_of_a_parent_is_found(make_sc09: Callable[..., Path]) -> None:
    root = make_sc09("sc09")
    assert sc09_splits(root.parent)["train"] == sc09_splits(root)["train"]


def test_items_are_padded_or_cropped_to_one_second(make_sc09: Callable[..., Path]) -> None:
    root = make_sc09(lengths=(12000, 16000, 20000))
    data = build_sc09(SC09Config(root=str(root)))
    train = data.split("train")
    for i in range(len(train)):
        codes, label = train[i]
        assert codes.shape == (16000,)
        assert codes.dtype == torch.int64
        assert 0 <= label < 10
    assert data.labels == WORDS
    x = torch.arange(5.0)
    assert fit_length(x, 3).tolist() == [0, 1, 2]
    assert fit_length(x, 7).tolist() == [0, 1, 2, 3, 4, 0, 0]


def test_short_clips_are_padded_with_the_ignore_index(make_sc09: Callable[..., Path]) -> None:
    """As the reference does: the clip is quantised at its own length (its min-max scaling
    sees only real samples) and the padding is left out of the loss."""
    from audio_core.protocols import IGNORE_INDEX
    from audio_data.quantize import encode

    root = make_sc09(lengths=(12000,))
    data = build_sc09(SC09Config(root=str(root)))
    codes, _ = data.split("train")[0]
    assert torch.all(codes[12000:] == IGNORE_INDEX)
    own = encode(data.split("train").audio(0)[:12000], quantization="mu-law")
    assert torch.equal(codes[:12000], own)
    assert (int(codes[:12000].min()), int(codes[:12000].max())) == (0, 255)
    assert torch.all(data.split("train").audio(0)[12000:] == 0)  # the waveform is zero-padded


def test_stereo_is_mixed_down_and_other_rates_resampled(
    tmp_path: Path, make_sc09: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_sc09()
    left, right = tone(8000, 300, rate=8000), np.zeros(8000, dtype=np.float32)
    write_wav(root / "zero" / "spk0_nohash_0.wav", np.stack([left, right], 1), rate=8000)
    data = build_sc09(SC09Config(root=str(root)))
    first = next(i for i, (p, _) in enumerate(data.split("train").files) if p.parent.name == "zero")
    audio = data.split("train").audio(first)
    assert audio.shape == (16000,)
    assert 0.2 < audio.abs().max().item() < 0.3  # half of the 0.5 tone: the mean of the channels
    assert "resampling" in capsys.readouterr().err
    refuse = build_sc09(SC09Config(root=str(root), resample="refuse"))
    with pytest.raises(DataError, match=r"sample rate 8000 Hz, expected 16000 Hz"):
        refuse.split("train")[first]


def test_a_missing_folder_names_the_path_and_the_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no such folder; download SC09 with 'audio-run data"):
        sc09_splits(tmp_path / "nowhere")


def test_a_folder_without_digit_folders_is_named(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match=r"not an SC09 or Speech Commands folder"):
        sc09_splits(tmp_path / "x")


def test_empty_word_folders_are_named(tmp_path: Path) -> None:
    for word in WORDS:
        (tmp_path / "e" / word).mkdir(parents=True)
    (tmp_path / "e" / "validation_list.txt").write_text("")
    (tmp_path / "e" / "testing_list.txt").write_text("")
    with pytest.raises(DataError, match=r"hold no .wav files"):
        sc09_splits(tmp_path / "e")


def test_a_missing_split_list_is_named(make_sc09: Callable[..., Path]) -> None:
    root = make_sc09()
    (root / "testing_list.txt").unlink()
    with pytest.raises(DataError, match=r"testing_list.txt: missing"):
        sc09_splits(root)


def test_a_list_naming_a_missing_file_gives_file_and_line(make_sc09: Callable[..., Path]) -> None:
    root = make_sc09()
    with (root / "validation_list.txt").open("a") as handle:
        handle.write("three/ghost_nohash_0.wav\n")
    with pytest.raises(DataError, match=r"validation_list.txt:11: names three/ghost_nohash_0.wav"):
        sc09_splits(root)


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00WAVEjunk"])
def test_corrupt_or_empty_wavs_are_named(make_sc09: Callable[..., Path], content: bytes) -> None:
    root = make_sc09()
    bad = root / "four" / "spk0_nohash_0.wav"
    bad.write_bytes(content)
    data = build_sc09(SC09Config(root=str(root)))
    index = next(i for i, (p, _) in enumerate(data.split("train").files) if p == bad)
    with pytest.raises(DataError, match=rf"{bad}: unreadable audio .*; replace or delete it"):
        data.split("train")[index]


def test_a_zero_length_wav_is_named(make_sc09: Callable[..., Path]) -> None:
    root = make_sc09()
    bad = write_wav(root / "four" / "spk0_nohash_0.wav", np.zeros(0, dtype=np.float32))
    data = build_sc09(SC09Config(root=str(root)))
    index = next(i for i, (p, _) in enumerate(data.split("train").files) if p == bad)
    with pytest.raises(DataError, match=r"holds no audio \(0 frames\)"):
        data.split("train")[index]


def test_worker_seeding_differs_per_worker_and_repeats(make_sc09: Callable[..., Path]) -> None:
    import random

    from audio_data.datasets import seed_worker

    draws = []
    for worker in (0, 1, 0):
        torch.manual_seed(7)
        seed_worker(worker)
        draws.append((random.random(), np.random.rand()))
    assert draws[0] == draws[2]
    assert draws[0] != draws[1]
