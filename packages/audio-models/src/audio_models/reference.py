"""Reading the reference implementation's checkpoints (state-spaces/s4).

A released file (``checkpoints/<model>_<dataset>.pt``) is the ``state_dict()`` of the
reference's Lightning module: keys start with ``model.`` (the backbone), ``encoder.`` and
``decoder.``. Our models have the same module trees, so the mapping is a fixed set of
renames; nothing is guessed by position:

- SaShiMi: ``model.`` -> ``backbone.``, ``encoder.0`` -> ``embedding``,
  ``decoder.0.output_transform`` -> ``head``, and inside each residual layer
  ``norm.norm.{m,s}`` -> ``norm.{m,s}``, ``layer.layer.{D,kernel.*}`` -> ``layer.{D,kernel.*}``,
  ``layer.output_linear.0`` -> ``layer.output``, ``layer.ff.0.0`` / ``layer.ff.2`` ->
  ``layer.up`` / ``layer.down``.
- The older V3 layout (the paper's released SaShiMi files, most likely) is first brought to
  the current one as the reference's own converter does: ``kernel.kernel.log_dt`` (``(H,)``)
  -> ``kernel.inv_dt`` (``(H, 1)``), ``inv_w_real`` / ``log_w_real`` -> ``A_real``,
  ``w_imag`` -> ``A_imag`` negated, ``kernel.kernel.L`` -> ``kernel.l_kernel``, and ``D`` /
  ``kernel`` one level deeper. Such a model uses ``dt = exp(inv_dt)`` (``dt_transform =
  "exp"``); the current layout uses ``softplus``.
- WaveNet: ``model.`` -> ``backbone.``, encoder and decoder as for SaShiMi.
- SampleRNN: ``model.`` dropped.
- DiffWave (albertfgu/diffwave-sashimi, a ``<iteration>.pkl`` holding ``model_state_dict``):
  every key under ``denoiser.``; in master's SaShiMi the S4 renames above
  (:func:`diffwave_to_ours`). Its ``checkpoints`` branch, which made the paper's released
  DiffWave files, has S4 layers of two kernels in S4's first form (:func:`paired_to_ours`),
  read into a SaShiMi with ``paired_kernels``. WaveNet keys are the same in both.

A trained S4 kernel carries ``l_kernel`` (the length its ``C`` is tuned to: 16000 / 4000 /
1000 for SC09); an untrained one carries 0 and a plain ``C``. Both are honoured, then every
kernel is retuned to its tier's training length (:meth:`DPLRKernel.retune`, float64).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any, Literal

from torch import Tensor, nn

Layout = Literal[
    "sashimi",
    "sashimi-v3",
    "wavenet",
    "samplernn",
    "diffwave-sashimi",
    "diffwave-sashimi-checkpoints",
    "diffwave-wavenet",
]
DIFFWAVE_LAYOUTS = ("diffwave-sashimi", "diffwave-sashimi-checkpoints", "diffwave-wavenet")


class ReferenceFormatError(ValueError):
    """A file that is not a reference checkpoint of the expected model; the message names
    the first missing, unexpected or mis-shaped keys."""


_SASHIMI_RULES: tuple[tuple[str, str], ...] = (
    (r"^encoder\.0\.", "embedding."),
    (r"^decoder\.0\.output_transform\.", "head."),
    (r"^model\.", "backbone."),
    (r"\.norm\.norm\.(m|s)$", r".norm.\1"),
    (r"\.layer\.layer\.D$", ".layer.D"),
    (r"\.layer\.layer\.kernel\.", ".layer.kernel."),
    (r"\.layer\.output_linear\.0\.", ".layer.output."),
    (r"\.layer\.ff\.0\.0\.", ".layer.up."),
    (r"\.layer\.ff\.2\.", ".layer.down."),
)
_WAVENET_RULES: tuple[tuple[str, str], ...] = (
    (r"^encoder\.0\.", "embedding."),
    (r"^decoder\.0\.output_transform\.", "head."),
    (r"^model\.", "backbone."),
)
_SAMPLERNN_RULES: tuple[tuple[str, str], ...] = ((r"^model\.", ""),)


def detect_layout(state: Mapping[str, Any]) -> Layout:
    """Which reference model (and, for SaShiMi, which code version) wrote ``state``.

    Raises:
        ReferenceFormatError: the keys match none of them.
    """
    keys = list(state)
    if any(".layer.kernel.krylov." in k for k in keys):
        return "diffwave-sashimi-checkpoints"
    if any(k.startswith("residual_layer.residual_blocks.") for k in keys):
        return "diffwave-wavenet"
    if "fc_t1.weight" in state and any(k.startswith(("d_layers.", "c_layers.")) for k in keys):
        return "diffwave-sashimi"
    if any(k.startswith("model.frame_level_rnns.") for k in keys):
        return "samplernn"
    if any(k.startswith("model.filter_convs.") for k in keys):
        return "wavenet"
    if any(".kernel.kernel." in k for k in keys):
        return "sashimi-v3"
    if any(k.startswith("model.") and ".layer.layer." in k for k in keys):
        return "sashimi"
    shown = ", ".join(keys[:3]) or "no keys"
    raise ReferenceFormatError(
        f"not a reference SaShiMi, WaveNet, SampleRNN or DiffWave checkpoint (its keys start "
        f"{shown})"
    )


def diffwave_to_ours(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A DiffWave ``model_state_dict`` (the reference's master layout) under our names: every
    key under ``denoiser.``, and in each S4 layer ``kernel.kernel.log_dt (H,)`` ->
    ``kernel.inv_dt (H, 1)`` (``dt = exp``), ``inv_w_real`` -> ``A_real``, ``w_imag`` ->
    ``A_imag`` negated, ``L`` -> ``l_kernel``, ``output_linear.0`` (a 1x1 convolution) ->
    ``output`` (a linear map)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if ".layer.kernel.kernel." in key:
            key = key.replace(".layer.kernel.kernel.", ".layer.kernel.")
            if key.endswith(".log_dt"):
                key, value = key[: -len("log_dt")] + "inv_dt", value.unsqueeze(-1)
            elif key.endswith(".inv_w_real"):
                key = key[: -len("inv_w_real")] + "A_real"
            elif key.endswith(".w_imag"):
                key, value = key[: -len("w_imag")] + "A_imag", -value
            elif key.endswith(".L"):
                key = key[: -len("L")] + "l_kernel"
        elif ".layer.output_linear.0." in key:
            key = key.replace(".layer.output_linear.0.", ".layer.output.")
            if key.endswith(".weight"):
                value = value.squeeze(-1)
        out[f"denoiser.{key}"] = value
    return out


_KRYLOV = re.compile(r"^(.*\.layer\.)(kernel|kernel2)\.krylov\.(C|log_dt|w|B|nodes|z)$")


def paired_to_ours(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A DiffWave ``model_state_dict`` of the reference's ``checkpoints`` branch under our
    names (for a SaShiMi built with ``paired_kernels``).

    Each S4 layer there has two kernels (``kernel.krylov``: forward, ``kernel2.krylov``:
    backward) of S4's first form: ``w (M,)`` the diagonal of ``A``, ``B (1 + r, M)`` stacking
    ``B`` and the low-rank ``p``, ``C (H, 1 + r, M)`` stacking ``C_tilde`` and ``q`` (both
    trained), ``log_dt (H,)``, ``nodes`` / ``z`` (the FFT nodes of its length ``L``, dropped
    here: ``l_kernel = 2 (len(nodes) - 1)``), with ``A = diag(w) - p q^*`` and the kernel's
    output vector ``conj(C_tilde)``. In ours: ``Lambda = w``, ``B``, ``P = p``, ``Q = q``,
    ``C = conj(C_tilde)``, ``inv_dt = log_dt`` (``dt = exp``); modes whose ``w`` has a positive
    imaginary part are replaced by their conjugates (the same kernel: each mode stands for a
    conjugate pair). ``D (H,)`` stays, ``output_linear`` (``weight (H, 2 H)``, ``bias (H, 1)``)
    -> ``output``.

    Raises:
        ReferenceFormatError: a kernel's tensors are incomplete or not decaying.
    """
    import torch

    out: dict[str, Tensor] = {}
    kernels: dict[tuple[str, str], dict[str, Tensor]] = {}
    for key, value in state.items():
        if m := _KRYLOV.match(key):
            kernels.setdefault((m.group(1), m.group(2)), {})[m.group(3)] = value
        elif key.endswith(".layer.output_linear.weight"):
            out[f"denoiser.{key.replace('.output_linear.', '.output.')}"] = value
        elif key.endswith(".layer.output_linear.bias"):
            out[f"denoiser.{key.replace('.output_linear.', '.output.')}"] = value.reshape(-1)
        else:
            out[f"denoiser.{key}"] = value
    for (layer, which), parts in kernels.items():
        name = f"{layer}{which}.krylov"
        missing = [p for p in ("C", "log_dt", "w", "B", "nodes") if p not in parts]
        if missing:
            raise ReferenceFormatError(f"{name} lacks {', '.join(missing)}")
        w = torch.view_as_complex(parts["w"].double().contiguous())  # (M,)
        Bp = torch.view_as_complex(parts["B"].double().contiguous())  # (1 + r, M)
        Cq = torch.view_as_complex(parts["C"].double().contiguous())  # (H, 1 + r, M)
        if bool((w.real >= 0).any()):
            raise ReferenceFormatError(f"{name}.w has modes that do not decay (real part >= 0)")
        flip = w.imag > 0  # keep the half with negative imaginary parts, as ours does
        B, P = Bp[0], Bp[1:]
        C, Q = Cq[:, 0].conj(), Cq[:, 1:].transpose(0, 1)  # (H, M), (r, H, M)
        w, B, P, Q, C = (torch.where(flip, x.conj(), x) for x in (w, B, P, Q, C))
        ours = f"denoiser.{layer}{'forward' if which == 'kernel' else 'backward'}_kernel."
        out[ours + "A_real"] = torch.log(-w.real).unsqueeze(0)
        out[ours + "A_imag"] = (-w.imag).unsqueeze(0)
        out[ours + "B"] = torch.view_as_real(B)[None, None]
        out[ours + "P"] = torch.view_as_real(P)[:, None]
        out[ours + "Q"] = torch.view_as_real(Q)
        out[ours + "C"] = torch.view_as_real(C)[None]
        out[ours + "inv_dt"] = parts["log_dt"].double().unsqueeze(-1)
        out[ours + "l_kernel"] = torch.tensor(2 * (parts["nodes"].shape[0] - 1))
    return out


def v3_to_current(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Bring a V3 SaShiMi state dict to the reference's current names (see the module notes)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith("kernel.kernel.log_dt"):
            value = value.unsqueeze(-1)
        key = key.replace("log_dt", "inv_dt")
        key = key.replace("inv_w_real", "A_real").replace("log_w_real", "A_real")
        if key.endswith("w_imag"):
            key = key.replace("w_imag", "A_imag")
            value = -value
        key = key.replace("kernel.kernel.L", "kernel.kernel.l_kernel")
        key = key.replace("kernel.kernel", "kernel")
        key = re.sub(r"\.layer\.kernel\.", ".layer.layer.kernel.", key)
        key = re.sub(r"\.layer\.D$", ".layer.layer.D", key)
        out[key] = value
    return out


def rename(state: Mapping[str, Tensor], layout: Layout) -> dict[str, Tensor]:
    """Map a reference state dict of ``layout`` onto our key names."""
    if layout == "diffwave-sashimi-checkpoints":
        return paired_to_ours(state)
    if layout in DIFFWAVE_LAYOUTS:
        return diffwave_to_ours(state)
    if layout == "sashimi-v3":
        state = v3_to_current(state)
    rules = {
        "sashimi": _SASHIMI_RULES,
        "sashimi-v3": _SASHIMI_RULES,
        "wavenet": _WAVENET_RULES,
        "samplernn": _SAMPLERNN_RULES,
    }[layout]
    out = {}
    for key, value in state.items():
        new = key
        for pattern, replacement in rules:
            new = re.sub(pattern, replacement, new)
        out[new] = value
    return out


def mismatches(
    expected: Mapping[str, Tensor], given: Mapping[str, Tensor], *, limit: int = 3
) -> list[str]:
    """The first missing, unexpected and mis-shaped keys (ours named), for messages."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shaped = [
        f"{k} {tuple(given[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in expected
        if k in given and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    found = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shaped)):
        if items:
            more = f" and {len(items) - limit} more" if len(items) > limit else ""
            found.append(f"{label}: {', '.join(items[:limit])}{more}")
    return found


def load_reference_state(model: nn.Module, state: Mapping[str, Tensor], layout: Layout) -> None:
    """Load a reference state dict into ``model`` (built from the matching preset) and
    retune every S4 kernel to its tier's training length.

    Raises:
        ReferenceFormatError: keys or shapes do not match (the first of each are named).
    """
    from ssm_kernels.kernels import DPLRKernel

    renamed = rename(state, layout)
    own = model.state_dict()
    problems = mismatches(own, renamed)
    if problems:
        raise ReferenceFormatError("; ".join(problems))
    converted = {k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in renamed.items()}
    kernels = {n: m for n, m in model.named_modules() if isinstance(m, DPLRKernel)}
    tier_lengths = {n: m.l_max for n, m in kernels.items()}  # as built: each tier's length
    model.load_state_dict(converted)
    for name, kernel in kernels.items():
        if kernel.l_max == 0 or kernel.l_max < tier_lengths[name]:
            kernel.retune(tier_lengths[name])


def reference_logits(model: nn.Module, inputs: Tensor) -> Tensor:
    """Our model's output on the reference's module-level input convention: logits
    ``(B, L, classes)`` of ``inputs`` as the reference's ``module.forward`` computes them
    (WaveNet keeps the last ``L - receptive_field`` positions, SampleRNN treats the first
    ``context`` inputs as history)."""
    forward: Any = getattr(model, "forward_inputs", None)
    if forward is None:
        raise TypeError(f"{type(model).__name__} has no forward_inputs")
    out = forward(inputs)
    if isinstance(out, tuple):
        out = out[0]
    context = int(getattr(getattr(model, "backbone", None), "context", 0))
    if context:
        out = out[:, context + 1 :]
    result: Tensor = out
    return result


# -- what a reference file says about its model ------------------------------------------------
def _count(state: Mapping[str, Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in state if (m := regex.match(k))})


def _kernel_options(state: Mapping[str, Tensor], prefix: str, width: int) -> dict[str, Any]:
    C = state[f"{prefix}kernel.C"]
    B = state[f"{prefix}kernel.B"]
    options: dict[str, Any] = {"d_state": 2 * int(C.shape[-2])}
    n_ssm = int(B.shape[1])
    options["n_ssm"] = 0 if n_ssm == width and width > 1 else n_ssm
    if f"{prefix}kernel.P" in state:
        options["name"] = "s4"
        options["rank"] = int(state[f"{prefix}kernel.P"].shape[0])
    else:
        options["name"] = "s4d"
        options["init"] = "diag-legs"
    return options


def infer_model(state: Mapping[str, Tensor], layout: Layout) -> tuple[dict[str, Any], list[str]]:
    """The ``[model]`` table a reference state dict implies (sizes read off the shapes) and
    notes on what could not be read from the weights.

    Raises:
        ReferenceFormatError: a key the inference needs is missing.
    """
    try:
        if layout == "diffwave-sashimi":
            return _infer_diffwave_sashimi(state)
        if layout == "diffwave-sashimi-checkpoints":
            return _infer_diffwave_paired(state)
        if layout == "diffwave-wavenet":
            return _infer_diffwave_wavenet(state)
        if layout in ("sashimi", "sashimi-v3"):
            return _infer_sashimi(rename(state, layout), layout)
        if layout == "wavenet":
            return _infer_wavenet(rename(state, layout))
        return _infer_samplernn(rename(state, layout))
    except KeyError as exc:
        raise ReferenceFormatError(f"missing key {exc.args[0]}") from None


def _infer_sashimi(state: Mapping[str, Tensor], layout: Layout) -> tuple[dict[str, Any], list[str]]:
    emb = state["embedding.weight"]
    bits = int(emb.shape[0]).bit_length() - 1
    d_model = int(emb.shape[1])
    unet = any(re.match(r"backbone\.d_layers\.\d+\.layer\.", k) for k in state)
    pool_key = re.compile(r"backbone\.d_layers\.(\d+)\.linear\.")
    pools = sorted({int(m.group(1)) for k in state if (m := pool_key.match(k))})
    pool, expand, width = [], 2, d_model
    for index in pools:
        key = f"backbone.d_layers.{index}.linear." + ("weight" if unet else "weight_v")
        out_features, in_features = state[key].shape
        pool.append(int(in_features) // width)
        expand = int(out_features) // width
        width = int(out_features)
    s4 = sorted(
        {m.group(1) for k in state if (m := re.match(r"(backbone\.c_layers\.\d+\.)layer\.D$", k))}
    )
    n_layers = len(s4)
    ff_keys = [k for k in state if re.match(r"backbone\.c_layers\.\d+\.layer\.up\.weight$", k)]
    ff = int(state[ff_keys[0]].shape[0]) // width if ff_keys else 0
    first = s4[0] if s4 else None
    kernel: dict[str, Any] = {}
    glu = True
    if first is not None:
        kernel = _kernel_options(state, f"{first}layer.", width)
        glu = int(state[f"{first}layer.output.weight"].shape[0]) == 2 * width
    kernel["dt_transform"] = "exp" if layout == "sashimi-v3" else "softplus"
    lengths = [
        int(v)
        for k, v in state.items()
        if k.endswith("kernel.l_kernel") and int(v) > 0 and "u_layers" in k
    ]
    notes = []
    model: dict[str, Any] = {
        "name": "sashimi",
        "bits": bits,
        "d_model": d_model,
        "n_layers": n_layers,
        "pool": pool,
        "expand": expand,
        "ff": ff,
        "glu": glu,
        "unet": unet,
        "kernel": kernel,
    }
    if lengths:
        model["l_max"] = max(lengths)
    else:
        notes.append("its S4 kernels never ran (l_kernel 0): the training length is the preset's")
    return model, notes


def _infer_wavenet(state: Mapping[str, Tensor]) -> tuple[dict[str, Any], list[str]]:
    start = state["backbone.start_conv.weight"]
    filt = state["backbone.filter_convs.0.weight"]
    n = _count(state, r"backbone\.filter_convs\.(\d+)\.weight$")
    model = {
        "name": "wavenet",
        "bits": int(state["embedding.weight"].shape[0]).bit_length() - 1,
        "d_model": int(start.shape[1]),
        "residual_channels": int(start.shape[0]),
        "dilation_channels": int(filt.shape[0]),
        "kernel_size": int(filt.shape[2]),
        "skip_channels": int(state["backbone.skip_convs.0.weight"].shape[0]),
        "end_channels": int(state["backbone.end_conv_1.weight"].shape[0]),
        "d_output": int(state["backbone.end_conv_2.weight"].shape[0]),
    }
    notes = []
    if n != 40:
        model.update(layers=n, blocks=1)
        notes.append(
            f"{n} dilated layers: blocks x layers is not in the weights; assuming one block of "
            f"{n} (set model.layers and model.blocks if it was otherwise)"
        )
    return model, notes


def _infer_samplernn(state: Mapping[str, Tensor]) -> tuple[dict[str, Any], list[str]]:
    tiers = _count(state, r"frame_level_rnns\.(\d+)\.input_expand\.bias$")
    samples = [
        int(state[f"frame_level_rnns.{i}.input_expand.weight_v"].shape[1]) for i in range(tiers)
    ]
    frames = [samples[0], *(b // a for a, b in itertools.pairwise(samples))]
    emb = state["sample_level_mlp.embedding.weight"]
    model = {
        "name": "samplernn",
        "frame_sizes": frames,
        "d_hidden": int(state["frame_level_rnns.0.input_expand.bias"].shape[0]),
        "n_rnn": _count(state, r"frame_level_rnns\.0\.rnn\.weight_ih_l(\d+)$"),
        "d_model": int(emb.shape[1]),
        "bits": int(emb.shape[0]).bit_length() - 1,
    }
    return model, ["how it dequantised its inputs is not in the weights: the preset's"]


def _step_embed(state: Mapping[str, Tensor], prefix: str = "") -> list[int]:
    fc1, fc2 = state[f"{prefix}fc_t1.weight"], state[f"{prefix}fc_t2.weight"]
    return [int(fc1.shape[1]), int(fc1.shape[0]), int(fc2.shape[0])]


def _infer_diffwave_sashimi(
    state: Mapping[str, Tensor], kernel_prefix: str = "layer.kernel.kernel."
) -> tuple[dict[str, Any], list[str]]:
    d_model = int(state["init_conv.0.conv.weight_v"].shape[0])
    block = re.compile(r"^(d|c|u)_layers\.(\d+)\.fc_t\.weight$")
    kinds: dict[str, set[int]] = {"d": set(), "c": set(), "u": set()}
    for key in state:
        if m := block.match(key):
            kinds[m.group(1)].add(int(m.group(2)))
    pools_at = sorted(
        {int(m.group(1)) for k in state if (m := re.match(r"^d_layers\.(\d+)\.linear\.", k))}
    )
    pool, expand, width = [], 2, d_model
    for index in pools_at:
        out_c, in_c, _ = state[f"d_layers.{index}.linear.conv.weight_v"].shape
        pool.append(int(in_c) // width)
        expand, width = int(out_c) // width, int(out_c)
    n_layers = len(kinds["c"])
    first = f"c_layers.{min(kinds['c'])}." if kinds["c"] else None
    kernel: dict[str, Any] = {"name": "s4", "dt_transform": "exp"}
    bidirectional, ff = True, 2
    if first is not None:
        C = state[f"{first}{kernel_prefix}C"]
        B = state[f"{first}{kernel_prefix}B"]
        bidirectional = int(C.shape[0]) == 2
        kernel["d_state"] = 2 * int(C.shape[-2])
        kernel["n_ssm"] = 0 if int(B.shape[1]) == width else int(B.shape[1])
        kernel["rank"] = int(state[f"{first}{kernel_prefix}P"].shape[0])
        ff = int(state[f"{first}ff.ff.0.conv.weight_v"].shape[0]) // width
    lengths = [
        int(v)
        for k, v in state.items()
        if k.endswith(("kernel.kernel.L", "forward_kernel.l_kernel")) and int(v) > 0
    ]
    backbone: dict[str, Any] = {
        "name": "sashimi", "d_model": d_model, "n_layers": n_layers, "pool": pool,
        "expand": expand, "ff": ff, "unet": bool(kinds["d"]), "bidirectional": bidirectional,
        "glu": True, "norm": "scalar", "kernel": kernel,
    }  # fmt: skip
    notes = []
    if lengths:
        backbone["l_max"] = max(lengths)
    else:
        notes.append("its S4 kernels never ran (L 0): the training length is the preset's")
    return {"name": "diffwave", "step_embed": _step_embed(state), "backbone": backbone}, notes


def _infer_diffwave_paired(state: Mapping[str, Tensor]) -> tuple[dict[str, Any], list[str]]:
    renamed = {k[len("denoiser.") :]: v for k, v in paired_to_ours(state).items()}
    model, _ = _infer_diffwave_sashimi(renamed, kernel_prefix="layer.forward_kernel.")
    backbone = model["backbone"]
    backbone.update(bidirectional=True, paired_kernels=True, glu=False)
    backbone["kernel"].update(separate_q=True, n_ssm=1)
    return model, [
        "the reference's `checkpoints` branch layout (the paper's released DiffWave files): "
        "its layer arithmetic is reconstructed from its key layout and the reference's early "
        "S4 code; no outputs of that code exist to check it against"
    ]


def _infer_diffwave_wavenet(state: Mapping[str, Tensor]) -> tuple[dict[str, Any], list[str]]:
    prefix = "residual_layer.residual_blocks."
    n = _count(state, r"residual_layer\.residual_blocks\.(\d+)\.fc_t\.weight$")
    conv = state[f"{prefix}0.dilated_conv_layer.conv.weight_v"]
    notes = []
    dilated = [k for k in state if k.endswith("dilated_conv_layer.conv.weight_v")]
    cycle = 12 if n % 12 == 0 else 10 if n % 10 == 0 else n
    notes.append(
        f"{n} residual layers: the dilation cycle is not in the weights; assuming {cycle} "
        "(set model.backbone.layers if it was otherwise)"
    )
    backbone = {
        "name": "wavenet",
        "residual_channels": int(conv.shape[1]),
        "skip_channels": int(state[f"{prefix}0.skip_conv.weight_v"].shape[0]),
        "layers": cycle,
        "blocks": n // cycle,
        "kernel_size": int(conv.shape[2]),
    }
    assert dilated
    return {"name": "diffwave", "step_embed": _step_embed(state, "residual_layer."),
            "backbone": backbone}, notes  # fmt: skip


#: Training length -> the reference dataset it implies.
DATASET_OF_LENGTH = {16000: "sc09", 131072: "youtubemix", 128000: "beethoven"}


def infer_preset(model: Mapping[str, Any], layout: Layout) -> str:
    """The preset a reference file most likely came from (its model and training length)."""
    if layout in ("diffwave-sashimi", "diffwave-sashimi-checkpoints"):
        backbone = model["backbone"]
        small = "-small" if int(backbone["d_model"]) < 128 else ""
        uni = "-uni" if small and not backbone["bidirectional"] else ""
        return f"sashimi-diffwave{small}{uni}-sc09"
    if layout == "diffwave-wavenet":
        return "diffwave-sc09" if int(model["backbone"]["residual_channels"]) >= 256 else (
            "diffwave-small-sc09"
        )  # fmt: skip
    family = {"sashimi": "sashimi", "sashimi-v3": "sashimi"}.get(layout, layout)
    dataset = DATASET_OF_LENGTH.get(int(model.get("l_max", 16000)), "sc09")
    if family == "sashimi" and model.get("unet"):
        return "sashimi-sc09-unet"
    return f"{family}-{dataset}"
