"""sc09-synth: deterministic, in the SC09 layout, learnable and not trivially predictable."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audio_data.config import SC09SynthConfig
from audio_data.datasets import build_sc09_synth, sc09_splits
from audio_data.errors import DataError
from audio_data.synth import WORDS, make_sc09_synth, synthesize


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sc09_synth(tmp_path_factory.mktemp("s") / "sc09-synth", per_class=20)


def test_the_layout_is_sc09s(synth_root: Path) -> None:
    splits = sc09_splits(synth_root)
    assert sum(len(s) for s in splits.values()) == 200
    assert all(len(splits[s]) > 0 for s in ("train", "val", "test"))
    speakers = {s: {p.name.split("_")[0][:4] for p, _ in splits[s]} for s in splits}
    assert not (speakers["train"] & speakers["val"])
    assert not (speakers["train"] & speakers["test"])


def test_identical_across_processes(synth_root: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from audio_data.synth import make_sc09_synth;"
        "make_sc09_synth(Path(sys.argv[1]), per_class=20)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "again")], check=True)
    assert digest(tmp_path / "again") == digest(synth_root)
    assert torch.equal(synthesize(3, 5, 1), synthesize(3, 5, 1))
    assert not torch.equal(synthesize(3, 5, 1), synthesize(3, 6, 1))


def features(x: torch.Tensor) -> torch.Tensor:
    """Log energy in 40 bands, averaged over the first, middle and last third of the frames
    where the clip is active, plus the active length: aligned on the word, not the clock."""
    spec = torch.stft(x, 512, 256, window=torch.hann_window(512), return_complex=True).abs()[:200]
    bands = torch.log(spec.reshape(40, 5, -1).mean(1) + 1e-4)
    energy = spec.square().sum(0)
    active = bands[:, energy > 0.1 * energy.max()]
    n = active.shape[1]
    thirds = [active[:, : max(1, n // 3)], active[:, n // 3 : max(n // 3 + 1, 2 * n // 3)]]
    thirds.append(active[:, 2 * n // 3 :])
    return torch.cat([t.mean(1) for t in thirds] + [torch.tensor([n / 10.0])])


def test_a_simple_classifier_separates_the_words(synth_root: Path) -> None:
    """Nearest class centroid on band energies, trained on the training speakers, scored on
    unseen speakers: far above chance (10 %)."""
    data = build_sc09_synth(SC09SynthConfig(root=str(synth_root), per_class=20))
    train, test = data.split("train"), data.split("test")
    feats = torch.stack([features(train.audio(i)) for i in range(len(train))])
    labels = torch.tensor([train.files[i][1] for i in range(len(train))])
    centroids = torch.stack([feats[labels == c].mean(0) for c in range(10)])
    hits = 0
    for i in range(len(test)):
        guess = torch.cdist(features(test.audio(i))[None], centroids).argmin().item()
        hits += int(guess == test.files[i][1])
    assert hits / len(test) >= 0.6


def test_the_waveform_is_far_from_trivially_predictable(synth_root: Path) -> None:
    """A first-order Markov model of the 8-bit codes (fit on train, smoothed) still needs
    well over a bit per sample on validation clips."""
    data = build_sc09_synth(SC09SynthConfig(root=str(synth_root), per_class=20))
    counts = torch.ones(256, 256, dtype=torch.float64)
    for i in range(len(data.split("train"))):
        codes, _ = data.split("train")[i]
        counts.index_put_(
            (codes[:-1], codes[1:]), torch.ones(15999, dtype=torch.float64), accumulate=True
        )
    logp = torch.log(counts / counts.sum(1, keepdim=True))
    val = data.split("val")
    nll = sum(-logp[val[i][0][:-1], val[i][0][1:]].mean().item() for i in range(len(val))) / len(
        val
    )
    assert nll / math.log(2) > 1.0


def test_first_use_writes_it_and_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "auto"
    data = build_sc09_synth(SC09SynthConfig(root=str(root), per_class=10))
    assert len(data.split("train")) + len(data.split("val")) + len(data.split("test")) == 100
    assert data.labels == WORDS
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="exists but is not an sc09-synth folder"):
        build_sc09_synth(SC09SynthConfig(root=str(tmp_path / "foreign")))
    assert (tmp_path / "foreign" / "mine.txt").read_text() == "keep me"


def test_make_refuses_to_overwrite_and_small_sizes(tmp_path: Path) -> None:
    make_sc09_synth(tmp_path / "s", per_class=10)
    with pytest.raises(DataError, match=r"already exists; pass --force"):
        make_sc09_synth(tmp_path / "s", per_class=10)
    with pytest.raises(DataError, match=r"--per-class must be at least 10"):
        make_sc09_synth(tmp_path / "t", per_class=3)
    assert not (tmp_path / "t").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary folders left
