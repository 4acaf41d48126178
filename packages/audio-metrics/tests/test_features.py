"""The feature cache: a second evaluation reuses it; a changed clip or classifier does not."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from audio_metrics.features import cached_features, folder_key, load_cached
from audio_metrics.suite import Features


def _features(seed: int) -> Features:
    rng = np.random.default_rng(seed)
    return Features(
        rng.normal(size=(3, 4)), rng.dirichlet(np.ones(5), size=3), ("a", "b", "c"), np.arange(3)
    )


def test_second_lookup_is_served_from_the_cache(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> Features:
        calls.append(1)
        return _features(0)

    key = {"classifier": "abc", "folder": "x", "files": []}
    first, hit1 = cached_features(key, compute, tmp_path)
    second, hit2 = cached_features(key, compute, tmp_path)
    assert (hit1, hit2) == (False, True)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.activations, second.activations)
    np.testing.assert_array_equal(first.probs, second.probs)
    assert second.names == ("a", "b", "c")
    assert second.labels is not None
    np.testing.assert_array_equal(second.labels, np.arange(3))


def test_no_cache_means_always_compute(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> Features:
        calls.append(1)
        return _features(0)

    for _ in range(2):
        cached_features({"k": 1}, compute, None)
    assert len(calls) == 2


def test_a_changed_file_or_classifier_changes_the_key(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"x" * 10)
    key = folder_key("abc", [wav])
    assert folder_key("abc", [wav]) == key
    assert folder_key("abd", [wav]) != key
    wav.write_bytes(b"y" * 11)
    os.utime(wav, ns=(1, 1))
    assert folder_key("abc", [wav]) != key


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"garbage",  # not a zip at all
        lambda data: data[: len(data) // 2],  # cut in half: BadZipFile
        lambda data: data[:-30],  # cut in the central directory
        lambda data: b"",  # empty: EOFError
    ],
)
def test_a_damaged_entry_is_recomputed(tmp_path: Path, damage) -> None:
    key = {"k": 2}
    cached_features(key, lambda: _features(0), tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(damage(entry.read_bytes()))
    assert load_cached(tmp_path, key) is None
    again, hit = cached_features(key, lambda: _features(1), tmp_path)
    assert not hit
    np.testing.assert_array_equal(again.activations, _features(1).activations)
