"""The reference's classifier, features and metric formulas, against the outputs the reference
itself produced (``../shared/reference/classifier``; see its README).

Tolerances are the ones that hold between the reference's float32 and float64 runs: features
1e-3 dB, probabilities 1e-5, activations and logits 1e-4.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from audio_core.testing import reference_dir
from audio_metrics import metrics as M
from audio_metrics.audio import read_wav
from audio_metrics.config import ISConfig, MISConfig, NDBConfig
from audio_metrics.errors import MetricsError
from audio_metrics.reference_classifier import (
    CifarResNeXt,
    Mel32,
    ResNeXtShape,
    load_reference_classifier,
    mel_basis,
    read_reference_file,
)
from audio_metrics.suite import IS, MIS, NDB, Features
from audio_metrics.training import load_classifier

CPU = torch.device("cpu")
MODELS = ["resnext_tiny", "resnext_tiny_bare", "resnext_tiny_bnstats", "resnext_tiny_cudastyle"]


@pytest.fixture(scope="module")
def ref() -> Path:
    return reference_dir(__file__, "classifier")


@pytest.fixture(scope="module")
def features(ref: Path) -> dict[str, np.ndarray]:
    return dict(np.load(ref / "features.golden.npz"))


# -- the mel32 pipeline --------------------------------------------------------------------------
def test_the_mel_filters_are_librosas(features: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(mel_basis().numpy(), features["mel_basis"], atol=1e-8, rtol=1e-6)


def test_wavs_read_as_the_reference_reads_them(ref: Path, features: dict[str, np.ndarray]) -> None:
    for i, name in enumerate(features["clip_names"]):
        ours = read_wav(ref / "clips" / f"{name}.wav", 16000).numpy()
        np.testing.assert_array_equal(ours, features["samples"][i])


@pytest.mark.parametrize(
    ("mode", "key"), [("constant", "features"), ("reflect", "features_reflect")]
)
def test_features_match_the_reference_pipeline(
    features: dict[str, np.ndarray], mode: str, key: str
) -> None:
    for prefix in ("", "extra_"):
        waves = torch.from_numpy(features[f"{prefix}samples"])
        ours = Mel32(mode)(waves)[:, 0].numpy()  # type: ignore[arg-type]
        np.testing.assert_allclose(ours, features[f"{prefix}{key}"], atol=1e-3)
        assert ours.max() == 0.0
        assert ours.min() >= -80.0
    power = Mel32("constant").power(torch.from_numpy(features["samples"])).numpy()
    np.testing.assert_allclose(power, features["mel_power"], rtol=1e-4, atol=1e-12)


# -- the released classifier's file format -----------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_the_reference_files_load_and_reproduce_its_outputs(ref: Path, name: str) -> None:
    golden = torch.load(ref / f"{name}.golden.pt")
    model, payload, digest = load_classifier(ref / f"{name}.pth", CPU, pad_mode="constant")
    assert payload["labels"][:2] == ["zero", "one"]
    assert payload["dataset"]["name"] == "sc09"
    assert len(digest) == 64
    shape = golden["constructor_kwargs"]
    assert model.network.shape == ResNeXtShape(**shape)
    own = model.network.state_dict()
    for key, value in golden["state_dict"].items():
        assert torch.equal(own[key], value), key
    with torch.no_grad():
        activations, logits = model.network(golden["input"])
    np.testing.assert_allclose(logits.numpy(), golden["logits"].numpy(), atol=1e-4)
    np.testing.assert_allclose(activations.numpy(), golden["activations"].numpy(), atol=1e-4)
    # the whole path from the wavs: read, features, network
    waves = torch.stack([read_wav(ref / "clips" / f"{n}.wav", 16000) for n in golden["clip_names"]])
    h, probs = model.features(waves)
    np.testing.assert_allclose(probs.numpy(), golden["probs"].numpy(), atol=1e-5)
    np.testing.assert_allclose(h.numpy(), golden["activations"].numpy(), atol=1e-4)
    assert torch.equal(probs.argmax(-1), golden["pred"])
    reflect, _, other = load_classifier(ref / f"{name}.pth", CPU)  # reflect: the default
    _, probs_reflect = reflect.features(waves)
    np.testing.assert_allclose(probs_reflect.numpy(), golden["probs_reflect"].numpy(), atol=1e-5)
    assert other != digest  # the padding is part of the features' identity


def test_float64_agrees_with_the_references_float64(ref: Path) -> None:
    golden = torch.load(ref / "resnext_tiny.golden.pt")
    model, _, _ = load_reference_classifier(ref / "resnext_tiny.pth", CPU, pad_mode="constant")
    with torch.no_grad():
        _, logits = model.network.double()(golden["input"].double())
    np.testing.assert_allclose(logits.numpy(), golden["logits_f64"].numpy(), atol=1e-9)


def test_the_released_architecture_has_its_parameter_count() -> None:
    network = CifarResNeXt(ResNeXtShape())
    assert sum(p.numel() for p in network.parameters()) == 34_425_546
    assert network.feature_dim == 1024


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_a_pickle_with_anything_else_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"models.resnext": _Evil()}, buffer)
    with pytest.raises(MetricsError, match=r"refusing (posix|os)\.system"):
        read_reference_file(buffer.getvalue(), tmp_path / "evil.pth")
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buffer, pickle_protocol=2)
    with pytest.raises(MetricsError, match="not the reference's CifarResNeXt"):
        read_reference_file(buffer.getvalue(), tmp_path / "linear.pth")
    assert pickle.DEFAULT_PROTOCOL >= 2


# -- the metric formulas -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden_metrics(ref: Path) -> dict[str, np.ndarray]:
    return dict(np.load(ref / "metrics.golden.npz"))


def _features(m: dict[str, np.ndarray], which: str) -> Features:
    probs, acts = m[f"probs_{which}"], m[f"act_{which}"]
    return Features(acts, probs, tuple(f"{which}{i:04d}" for i in range(len(probs))))


def test_metrics_reproduce_the_reference_functions(golden_metrics: dict[str, np.ndarray]) -> None:
    m = golden_metrics
    gen, train = _features(m, "gen"), _features(m, "train")
    rng = np.random.default_rng(0)
    assert M.fid(m["act_gen"], m["act_train"]) == pytest.approx(float(m["ref_fid"]), rel=1e-10)
    assert M.fid(m["act_train"], m["act_train"]) == pytest.approx(0.0, abs=1e-9)
    reference_is = IS(ISConfig(variant="reference"))
    assert reference_is.compute(gen, train, rng)["is"] == pytest.approx(float(m["ref_is_gen"]))
    assert reference_is.compute(train, train, rng)["is"] == pytest.approx(float(m["ref_is_train"]))
    standard = IS(ISConfig()).compute(gen, train, rng)["is"]
    assert standard == pytest.approx(float(m["is_standard_full_gen"]))
    reference_mis = MIS(MISConfig(variant="reference"))
    assert reference_mis.compute(gen, train, rng)["mis"] == pytest.approx(float(m["ref_mis_gen"]))
    assert reference_mis.compute(train, train, rng)["mis"] == pytest.approx(
        float(m["ref_mis_train"])
    )
    hundred = MIS(MISConfig(variant="reference", pairs=100)).compute(gen, train, rng)["mis"]
    assert hundred == pytest.approx(float(m["ref_mis_gen_n100"]))
    assert M.am_score(m["probs_gen"], m["probs_train"].mean(0)) == pytest.approx(float(m["ref_am"]))
    assert M.am_score(m["probs_train"], m["probs_train"].mean(0)) == pytest.approx(
        float(m["ref_am_same"])
    )
    ndb = NDB(NDBConfig(seed=0)).compute(gen, train, rng)
    assert ndb["ndb_k"] == float(m["ref_ndb"])
    bins = M.NDBBins(m["act_train"], k=50, rng=rng, seed=0)
    np.testing.assert_allclose(bins.kmeans.cluster_centers_, m["ndb_kmeans_centers"], atol=1e-9)
    assert np.array_equal(bins.assign(m["act_gen"]), m["ndb_labels_gen"])
    assert NDB(NDBConfig(seed=0)).compute(train, train, rng)["ndb_k"] == float(m["ref_ndb_same"])


def test_the_reference_threshold_slice(golden_metrics: dict[str, np.ndarray]) -> None:
    """Its search keeps (0.4, 0.95) and applies them as positions in the held-out half sorted
    by likelihood: the metrics of that slice."""
    m = golden_metrics
    lo, hi = m["thr_slice"]
    test = m["thr_test_indices"]
    n = len(test)
    assert (int(0.4 * n), int(0.95 * n)) == (lo, hi)
    kept = test[lo:hi]
    assert M.inception_score_reference(m["probs_gen"][kept]) == pytest.approx(float(m["thr_is"]))
    assert M.modified_inception_score_reference(m["probs_gen"][kept]) == pytest.approx(
        float(m["thr_mis"])
    )
    assert M.am_score(m["probs_gen"][kept], m["probs_train"].mean(0)) == pytest.approx(
        float(m["thr_am"])
    )
    fid8 = M.fid(m["act_gen"][kept][:, :8], m["act_train"][:, :8])
    assert fid8 == pytest.approx(float(m["thr_fid_first8dims"]), rel=1e-9)
