"""The SaShiMi reference's SC09 classifier: its released ``resnext.pth`` and its features.

The released file is a whole pickled module (``torch.save(model)`` of a
``torch.nn.DataParallel`` around the reference's ``CifarResNeXt``), not a state dict, so it
cannot be loaded without the reference's source tree. :func:`load_reference_classifier` reads
it with a restricted unpickler instead: the module classes it names become inert records
whose parameters and buffers are collected as tensors; torch's tensor rebuilders,
``collections.OrderedDict``, ``set`` and ``torch.device`` are the only other globals allowed,
so anything else in the pickle (code to run) is refused. The tensors then load into
:class:`CifarResNeXt`, this package's implementation of the same architecture (Xie et al.'s
ResNeXt-29 for 32 x 32 inputs: a 3 x 3 stem, three stages of bottlenecks with grouped 3 x 3
convolutions, 8 x 8 average pooling, a linear classifier) with the reference's parameter
names.

The features are the reference's ``mel32`` pipeline (librosa 0.11 defaults, reproduced here
with torch in float64): the first 16000 samples (zero-padded), a centred STFT with a
2048-point periodic Hann window and hop 512, power 2, 32 Slaney-normalised mel bands on the
Slaney scale from 0 to 8000 Hz, ``10 log10`` relative to the clip's maximum, floored 80 dB
below it (``power_to_db(ref=max)``): a ``(32, 32)`` image per clip. librosa up to 0.8 padded
the STFT by reflection, 0.9 on with zeros; ``pad_mode="reflect"`` (the default) is the
torch-1.9-era behaviour the released cache most likely used, ``"constant"`` the current one.
"""

from __future__ import annotations

import collections
import hashlib
import io
import math
import pickle
import zipfile
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import attrs
import torch
import torch.nn.functional as F
from attrs import frozen
from torch import Tensor, nn

from .errors import MetricsError

PadMode = Literal["reflect", "constant"]
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


# -- the mel32 front end --------------------------------------------------------------------
def _hz_to_mel(hz: Tensor) -> Tensor:
    """The Slaney mel scale: linear below 1 kHz (3 bands per 200 Hz), logarithmic above."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    linear = hz / f_sp
    log = min_log_mel + torch.log(torch.clamp(hz, min=min_log_hz) / min_log_hz) / logstep
    return torch.where(hz >= min_log_hz, log, linear)


def _mel_to_hz(mel: Tensor) -> Tensor:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    linear = f_sp * mel
    log = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log, linear)


def mel_basis(
    sample_rate: int = 16000, n_fft: int = 2048, n_mels: int = 32, fmin: float = 0.0,
    fmax: float | None = None,
) -> Tensor:  # fmt: skip
    """``(n_mels, 1 + n_fft // 2)`` triangular filters, Slaney scale, each normalised to unit
    area (``2 / bandwidth``), float64."""
    fmax = sample_rate / 2 if fmax is None else fmax
    freqs = torch.linspace(0, sample_rate / 2, 1 + n_fft // 2, dtype=torch.float64)
    edges = _mel_to_hz(
        torch.linspace(
            float(_hz_to_mel(torch.tensor(fmin, dtype=torch.float64))),
            float(_hz_to_mel(torch.tensor(fmax, dtype=torch.float64))),
            n_mels + 2,
            dtype=torch.float64,
        )
    )
    widths = edges.diff()
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


class Mel32(nn.Module):
    """Waveforms ``(batch, samples)`` at 16 kHz -> the reference's ``(batch, 1, 32, 32)``
    log-mel images (float32, values in [-80, 0] dB)."""

    clip_len: ClassVar[int] = 16000
    n_fft: ClassVar[int] = 2048
    hop: ClassVar[int] = 512
    basis: Tensor
    window: Tensor

    def __init__(self, pad_mode: PadMode = "reflect") -> None:
        super().__init__()
        if pad_mode not in ("reflect", "constant"):
            raise ValueError(f"pad_mode must be reflect or constant; got {pad_mode!r}")
        self.pad_mode = pad_mode
        self.register_buffer("basis", mel_basis(), persistent=False)
        self.register_buffer(
            "window", torch.hann_window(self.n_fft, periodic=True, dtype=torch.float64),
            persistent=False,
        )  # fmt: skip

    def power(self, waves: Tensor) -> Tensor:
        """Mel power ``(batch, 32, frames)`` (float64)."""
        x = waves.double()
        x = x[..., : self.clip_len] if x.shape[-1] >= self.clip_len else F.pad(
            x, (0, self.clip_len - x.shape[-1])
        )  # fmt: skip
        spec = torch.stft(
            x, self.n_fft, self.hop, window=self.window, center=True, pad_mode=self.pad_mode,
            return_complex=True,
        )  # fmt: skip
        return self.basis @ spec.abs().square()

    def forward(self, waves: Tensor) -> Tensor:
        mel = self.power(waves)
        amin, top_db = 1e-10, 80.0
        db = 10 * torch.log10(torch.clamp(mel, min=amin))
        ref = 10 * torch.log10(torch.clamp(mel.amax(dim=(1, 2), keepdim=True), min=amin))
        db = db - ref
        db = torch.maximum(db, db.amax(dim=(1, 2), keepdim=True) - top_db)
        return db.float().unsqueeze(1)


# -- the architecture -----------------------------------------------------------------------
class ResNeXtBottleneck(nn.Module):
    """1 x 1 reduce, grouped 3 x 3 (the stride), 1 x 1 expand, each batch-normalised, with a
    projection shortcut where the width changes."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, cardinality: int, base_width: int,
        widen_factor: int,
    ) -> None:  # fmt: skip
        super().__init__()
        inner = cardinality * int(base_width * (c_out / (widen_factor * 64.0)))
        self.conv_reduce = nn.Conv2d(c_in, inner, 1, bias=False)
        self.bn_reduce = nn.BatchNorm2d(inner)
        self.conv_conv = nn.Conv2d(inner, inner, 3, stride, 1, groups=cardinality, bias=False)
        self.bn = nn.BatchNorm2d(inner)
        self.conv_expand = nn.Conv2d(inner, c_out, 1, bias=False)
        self.bn_expand = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if c_in != c_out:
            self.shortcut.add_module("shortcut_conv", nn.Conv2d(c_in, c_out, 1, stride, bias=False))
            self.shortcut.add_module("shortcut_bn", nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.bn_reduce(self.conv_reduce(x)))
        h = F.relu(self.bn(self.conv_conv(h)))
        h = self.bn_expand(self.conv_expand(h))
        return F.relu(self.shortcut(x) + h)


@frozen(kw_only=True)
class ResNeXtShape:
    """The released model: ``nlabels=10, cardinality=8, depth=29, base_width=64,
    widen_factor=4, in_channels=1`` (34,425,546 weights, 1024-dimensional activations)."""

    nlabels: int = 10
    cardinality: int = 8
    depth: int = 29
    base_width: int = 64
    widen_factor: int = 4
    in_channels: int = 1


class CifarResNeXt(nn.Module):
    """ResNeXt for 32 x 32 inputs with the reference's parameter names.

    ``forward`` returns ``(activations, logits)``: the pooled last stage (what the reference
    hooks as the classifier's input, for FID and NDB) and the class scores.
    """

    def __init__(self, shape: ResNeXtShape) -> None:
        super().__init__()
        self.shape = shape
        if (shape.depth - 2) % 9 or shape.depth < 11:
            raise ValueError(f"depth must be 9 n + 2 with n >= 1; got {shape.depth}")
        blocks = (shape.depth - 2) // 9
        widths = [64, 64 * shape.widen_factor, 128 * shape.widen_factor, 256 * shape.widen_factor]
        self.conv_1_3x3 = nn.Conv2d(shape.in_channels, 64, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(64)
        for i in range(3):
            stage = nn.Sequential()
            for b in range(blocks):
                c_in = widths[i] if b == 0 else widths[i + 1]
                stride = (1 if i == 0 else 2) if b == 0 else 1
                stage.add_module(
                    f"stage_{i + 1}_bottleneck_{b}",
                    ResNeXtBottleneck(c_in, widths[i + 1], stride, shape.cardinality,
                                      shape.base_width, shape.widen_factor),
                )  # fmt: skip
            self.add_module(f"stage_{i + 1}", stage)
        self.classifier = nn.Linear(widths[3], shape.nlabels)
        self.feature_dim = widths[3]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = F.relu(self.bn_1(self.conv_1_3x3(x)))
        for i in (1, 2, 3):
            h = cast(nn.Module, getattr(self, f"stage_{i}"))(h)
        pooled = F.avg_pool2d(h, 8, 1).flatten(1)
        return pooled, self.classifier(pooled)


# -- reading the released pickle ------------------------------------------------------------
class _Record:
    """What a pickled ``nn.Module`` becomes: its ``__dict__``, never its code."""

    qualname: ClassVar[str] = ""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


_MODULES = {
    ("models.resnext", "CifarResNeXt"),
    ("models.resnext", "ResNeXtBottleneck"),
    ("torch.nn.parallel.data_parallel", "DataParallel"),
    ("torch.nn.modules.conv", "Conv2d"),
    ("torch.nn.modules.batchnorm", "BatchNorm2d"),
    ("torch.nn.modules.linear", "Linear"),
    ("torch.nn.modules.container", "Sequential"),
}
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("torch", "device"): torch.device,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _MODULES:
            return type(name, (_Record,), {"qualname": f"{module}.{name}"})
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing {module}.{name}: not part of a classifier file")


class _RestrictedPickle:
    """A ``pickle_module`` for ``torch.load`` whose unpickler is :class:`_Unpickler`."""

    Unpickler = _Unpickler
    load = pickle.load
    __name__ = "restricted_pickle"


def _collect(record: Any, prefix: str, out: dict[str, Tensor]) -> None:
    for key in ("_parameters", "_buffers"):
        for name, value in getattr(record, key, {}).items():
            if value is not None:
                out[f"{prefix}{name}"] = value.detach() if isinstance(value, Tensor) else value
    for name, child in getattr(record, "_modules", {}).items():
        if child is not None:
            _collect(child, f"{prefix}{name}.", out)


def is_reference_file(data: bytes) -> bool:
    """Whether ``data`` is a torch file whose pickle names the reference's model classes."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            return bool(pickles) and b"models.resnext" in archive.read(pickles[0])
    except (zipfile.BadZipFile, KeyError):
        return False


def read_reference_file(data: bytes, origin: Path) -> tuple[dict[str, Tensor], ResNeXtShape]:
    """The tensors and the architecture of a released classifier file (wrapped in
    ``DataParallel`` or bare, saved on a CPU or a GPU).

    Raises:
        MetricsError: the file holds anything but the reference's classifier.
    """
    try:
        root = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False,
                          pickle_module=_RestrictedPickle)  # fmt: skip
    except pickle.UnpicklingError as exc:
        raise MetricsError(f"{origin}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways
        raise MetricsError(f"{origin}: not a readable classifier file ({exc})") from None
    model = root
    if getattr(root, "qualname", "").endswith("DataParallel"):
        model = getattr(root, "_modules", {}).get("module")
    if getattr(model, "qualname", "") != "models.resnext.CifarResNeXt":
        raise MetricsError(f"{origin}: the pickled module is not the reference's CifarResNeXt")
    state: dict[str, Tensor] = {}
    _collect(model, "", state)
    attrs_ = vars(model)
    try:
        shape = ResNeXtShape(
            nlabels=int(attrs_["nlabels"]),
            cardinality=int(attrs_["cardinality"]),
            depth=int(attrs_["depth"]),
            base_width=int(attrs_["base_width"]),
            widen_factor=int(attrs_["widen_factor"]),
            in_channels=int(state["conv_1_3x3.weight"].shape[1]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MetricsError(f"{origin}: the classifier lacks its shape ({exc})") from None
    return state, shape


class ReferenceClassifier(nn.Module):
    """The released classifier on waveforms: :class:`Mel32` then :class:`CifarResNeXt`.

    Same interface as :class:`~audio_metrics.classifier.SC09Classifier` for ``evaluate``:
    ``features(waveforms) -> (activations, probabilities)`` and ``config.sample_rate`` /
    ``config.clip_len``.
    """

    @frozen
    class Config:
        sample_rate: int = 16000
        clip_len: int = 16000
        pad_mode: PadMode = "reflect"

    def __init__(self, network: CifarResNeXt, pad_mode: PadMode = "reflect") -> None:
        super().__init__()
        self.frontend = Mel32(pad_mode)
        self.network = network
        self.config = ReferenceClassifier.Config(pad_mode=pad_mode)
        self.n_classes = network.shape.nlabels

    def forward(self, waveforms: Tensor) -> Tensor:
        logits: Tensor = self.network(self.frontend(waveforms))[1]
        return logits

    @torch.no_grad()
    def features(self, waveforms: Tensor) -> tuple[Tensor, Tensor]:
        activations, logits = self.network(self.frontend(waveforms))
        return activations, torch.softmax(logits.float(), dim=-1)


def load_reference_classifier(
    path: Path, device: torch.device, *, pad_mode: PadMode = "reflect", data: bytes | None = None
) -> tuple[ReferenceClassifier, dict[str, Any], str]:
    """The released classifier in ``path``, in evaluation mode, a payload like a trained
    checkpoint's (labels: the digit words; dataset: ``sc09``) and the file's SHA-256 (with
    the pad mode, the features' identity in caches).

    Raises:
        MetricsError: unreadable, not the reference's classifier, or weights that do not fit.
    """
    data = path.read_bytes() if data is None else data
    state, shape = read_reference_file(data, path)
    network = CifarResNeXt(shape)
    own = network.state_dict()
    wrong = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    extra = [k for k in state if k not in own]
    if wrong or extra:
        raise MetricsError(
            f"{path}: its weights do not fit a CifarResNeXt of its own shape ({len(wrong)} "
            f"missing or mis-shaped, {len(extra)} unexpected; first: {(wrong or extra)[0]})"
        )
    network.load_state_dict(state)
    model = ReferenceClassifier(network, pad_mode).to(device).eval()
    payload = {
        "kind": "reference-resnext",
        "labels": list(WORDS[: shape.nlabels]),
        "dataset": {"name": "sc09", "config": {}},
        "config": {"shape": attrs.asdict(shape), "pad_mode": pad_mode},
    }
    digest = hashlib.sha256(data + f"|mel32|{pad_mode}".encode()).hexdigest()
    return model, payload, digest
