"""Damaged audio and lists are refused naming the file, never read as if they were whole.

The reliability issue's data cases: a wav cut in the middle of its data (libsndfile reads the
frames that are there and the loader used to pad the rest), float wavs holding NaN, lists that
are not UTF-8, and file names that are not valid text.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from audio_data.audio import audio_info, check_wav_length, load_audio
from audio_data.config import FolderConfig, SC09Config
from audio_data.datasets import build_folder, build_sc09
from audio_data.errors import DataError
from audio_data.testing import tone, write_wav


def cut(path: Path, keep: int) -> Path:
    """Keep the first ``keep`` bytes of ``path`` (a copy interrupted mid-data)."""
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    return path


def test_a_wav_cut_mid_data_is_refused_with_both_lengths(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", tone(1000))
    size = path.stat().st_size  # 44-byte header + 2000 bytes
    cut(path, size - 600)  # 300 frames missing
    message = f"{path}: truncated: its header promises 1000 frames but the file holds 700"
    with pytest.raises(DataError, match=message):
        load_audio(path, sample_rate=16000)
    with pytest.raises(DataError, match="truncated"):
        audio_info(path)


@settings(max_examples=25, deadline=None)
@given(frames=st.integers(1, 400), channels=st.integers(1, 2), missing=st.integers(1, 399))
def test_every_cut_is_caught_and_every_whole_file_passes(
    tmp_path_factory: pytest.TempPathFactory, frames: int, channels: int, missing: int
) -> None:
    path = tmp_path_factory.mktemp("w") / "x.wav"
    samples = np.zeros((frames, channels), dtype=np.float32)
    sf.write(path, samples, 8000, subtype="PCM_16")
    check_wav_length(path)  # whole: passes
    kept = max(0, frames - missing)
    cut(path, path.stat().st_size - (frames - kept) * 2 * channels)
    if kept < frames:
        with pytest.raises(DataError, match=f"promises {frames} frames but the file holds {kept}"):
            check_wav_length(path)


def test_a_wav_with_chunks_before_its_data_is_measured_correctly(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "list.wav", tone(100))
    data = bytearray(path.read_bytes())
    extra = b"LIST" + (5).to_bytes(4, "little") + b"abcde\x00"  # odd length, padded
    data[36:36] = extra
    data[4:8] = (int.from_bytes(data[4:8], "little") + len(extra)).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    check_wav_length(path)
    assert load_audio(path, sample_rate=16000).shape == (100,)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_audio_is_refused(tmp_path: Path, bad: float) -> None:
    samples = tone(200)
    samples[50] = bad
    path = tmp_path / "f.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"f\.wav: holds non-finite samples \(NaN or inf\)"):
        load_audio(path, sample_rate=16000)


def test_a_list_that_is_not_utf8_names_the_file_and_the_byte(make_sc09) -> None:
    root = make_sc09()
    listing = root / "validation_list.txt"
    listing.write_bytes(b"zero/spk1_nohash_0.wav\n\xffone/x.wav\n")
    with pytest.raises(DataError, match=r"validation_list.txt: not UTF-8 text \(byte 23\)"):
        build_sc09(SC09Config(root=str(root)))


def test_file_names_that_are_not_valid_text_are_read(tmp_path: Path) -> None:
    root = tmp_path / "w"
    for i in range(3):
        name = os.fsdecode(b"part\xff" + bytes([48 + i]) + b".wav")  # surrogate-escaped
        write_wav(root / name, tone(4000, 100 + 10 * i))
    data = build_folder(FolderConfig(root=str(root), sample_len=2000, train_percentage=0.4))
    codes, _ = data.split("train")[0]
    assert codes.shape == (2000,)


def test_a_damaged_file_with_an_undecodable_name_is_still_one_line(tmp_path: Path) -> None:
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/bad\xfe.wav"))
    path.write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(DataError) as info:
        load_audio(path, sample_rate=16000)
    (message,) = info.value.args
    assert message.startswith(f"{path}: unreadable audio")
    assert "\n" not in message
