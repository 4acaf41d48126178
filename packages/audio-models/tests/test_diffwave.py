"""DiffWave: the schedule, the denoisers and sampling against the reference's own files
(``../shared/reference/diffwave``, albertfgu/diffwave-sashimi with random weights), the key
layouts of its full-size models (both code versions), and the model's contract."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from audio_core.config import BackboneChoice
from audio_core.testing import reference_dir
from audio_models.builders import build_diffwave
from audio_models.config import (
    SASHIMI_BACKBONE,
    WAVENET_BACKBONE,
    DiffWaveConfig,
    SaShiMiConfig,
    WaveNetConfig,
)
from audio_models.diffwave import (
    DiffWave,
    iter_noise,
    linear_schedule,
    respaced,
    step_embedding,
)
from audio_models.reference import (
    detect_layout,
    infer_model,
    infer_preset,
    load_reference_state,
    mismatches,
    paired_to_ours,
    rename,
)
from audio_models.testing import kernel
from ssm_kernels.block import PairedS4Block
from ssm_kernels.kernels import DPLRKernel


def diffwave_dir(*parts: str) -> Path:
    return reference_dir(__file__, "diffwave", *parts)


def sashimi(d_model: int = 16, *, unet: bool = True, **fields: object) -> BackboneChoice:
    fields.setdefault("kernel", kernel("s4", d_state=64, n_ssm=0, dt_transform="exp"))
    config = SaShiMiConfig(
        d_model=d_model, n_layers=2, pool=(4, 4), expand=2, ff=2, unet=unet, bidirectional=True,
        l_max=4096, **fields,  # type: ignore[arg-type]
    )  # fmt: skip
    return BackboneChoice(name="sashimi", config=config, spec=SASHIMI_BACKBONE)


def wavenet() -> BackboneChoice:
    config = WaveNetConfig(
        residual_channels=16, skip_channels=16, layers=2, blocks=2, kernel_size=3
    )
    return BackboneChoice(name="wavenet", config=config, spec=WAVENET_BACKBONE)


# The reference's tiny models (its README's overrides) as our configs.
TINY: dict[str, Callable[[], DiffWaveConfig]] = {
    "sashimi_tiny": lambda: DiffWaveConfig(step_embed=(32, 64, 512), backbone=sashimi()),
    "sashimi_tiny_L0": lambda: DiffWaveConfig(step_embed=(32, 64, 512), backbone=sashimi()),
    "sashimi_snet_tiny": lambda: DiffWaveConfig(
        step_embed=(32, 64, 512), backbone=sashimi(unet=False)
    ),
    "wavenet_tiny": lambda: DiffWaveConfig(step_embed=(32, 64, 64), backbone=wavenet()),
}
PARAMETERS = {  # the reference README's counts
    "sashimi_tiny": 406_475,
    "sashimi_tiny_L0": 406_475,
    "sashimi_snet_tiny": 310_171,
    "wavenet_tiny": 19_489,
}


def reference_state(name: str) -> dict[str, torch.Tensor]:
    data = torch.load(diffwave_dir("tiny") / f"{name}.pkl", weights_only=True)
    assert set(data) == {"model_state_dict", "optimizer_state_dict"}
    state: dict[str, torch.Tensor] = data["model_state_dict"]
    return state


def converted(name: str, dtype: torch.dtype = torch.float64) -> DiffWave:
    """Build in ``dtype`` first, then load: the reference's float64 outputs were made from
    its float32 tensors cast up, and an untrained ``C`` (``L = 0``) is retuned here, which
    in float32 would lose what float64 keeps."""
    model = build_diffwave(TINY[name]()).to(dtype).eval()
    state = reference_state(name)
    load_reference_state(model, state, detect_layout(state))
    assert isinstance(model, DiffWave)
    return model


def golden(name: str) -> dict[str, torch.Tensor]:
    data: dict[str, torch.Tensor] = torch.load(
        diffwave_dir("tiny") / f"{name}.golden.pt", weights_only=False
    )
    return data


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().pow(2).mean().sqrt())


# -- the schedule ---------------------------------------------------------------------------
def test_the_schedule_is_the_reference_bit_for_bit() -> None:
    data = torch.load(diffwave_dir() / "diffusion_schedule_sc09.pt", weights_only=False)
    for dtype, key in ((torch.float32, "f32"), (torch.float64, "f64")):
        ours = linear_schedule(200, 1e-4, 0.02, dtype)
        theirs = data[key]
        for mine, name in zip(ours[:4], ("Beta", "Alpha", "Alpha_bar", "Sigma"), strict=True):
            assert mine.dtype == dtype
            assert torch.equal(mine, theirs[name]), (key, name)
    # sigma_t^2 is beta-tilde: beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)
    s = linear_schedule(200, 1e-4, 0.02, torch.float64)
    tilde = s.beta[1:] * (1 - s.alpha_bar[:-1]) / (1 - s.alpha_bar[1:])
    assert torch.allclose(s.sigma[1:] ** 2, tilde, rtol=1e-12)
    assert torch.allclose(s.alpha_bar, torch.cumprod(1 - s.beta, 0), rtol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 7, 50, 199])
def test_a_respaced_schedule_keeps_alpha_bar_at_its_steps(n: int) -> None:
    full = linear_schedule(200, 1e-4, 0.02, torch.float64)
    short = respaced(full, n)
    assert short.beta.shape == (n,)
    assert int(short.steps[-1]) == 199
    if n > 1:
        assert int(short.steps[0]) == 0
        assert bool((short.steps.diff() > 0).all())
    assert torch.allclose(short.alpha_bar, full.alpha_bar[short.steps], rtol=1e-12)
    assert bool(((short.beta > 0) & (short.beta < 1)).all())
    assert respaced(full, 200) is full
    for bad in (0, 201):
        with pytest.raises(ValueError, match=f"generate.steps must be between 1 and the "
                           f"schedule's 200; got {bad}"):  # fmt: skip
            respaced(full, bad)


def test_the_step_embedding_is_the_sinusoid() -> None:
    steps = torch.tensor([0, 3, 150])
    e = step_embedding(steps, 8, torch.float64)
    freqs = [math.exp(-math.log(10000) * i / 3) for i in range(4)]
    for row, t in enumerate((0, 3, 150)):
        expected = [math.sin(t * f) for f in freqs] + [math.cos(t * f) for f in freqs]
        assert torch.allclose(e[row], torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="even and >= 4; got 5"):
        step_embedding(steps, 5, torch.float64)


# -- the reference's tiny models ------------------------------------------------------------
@pytest.mark.parametrize("name", list(TINY))
def test_the_tiny_models_convert_with_the_reference_counts(name: str) -> None:
    model = converted(name)
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name]
    state = reference_state(name)
    inferred, _ = infer_model(state, detect_layout(state))
    backbone = inferred["backbone"]
    ours = TINY[name]()
    assert inferred["step_embed"] == list(ours.step_embed)
    for field in ("d_model", "n_layers", "unet", "residual_channels", "skip_channels"):
        if field in backbone:
            assert backbone[field] == getattr(ours.backbone.config, field), field


@pytest.mark.parametrize("name", list(TINY))
def test_the_tiny_models_reproduce_the_reference_noise_predictions_in_float64(name: str) -> None:
    model, data = converted(name), golden(name)
    with torch.no_grad():
        eps = model.denoise(data["x"].double(), data["t"])
    assert eps.shape == data["eps64"].shape
    assert relative(eps, data["eps64"]) <= 1e-9


@pytest.mark.parametrize("name", list(TINY))
def test_the_tiny_models_agree_in_float32_as_closely_as_float32_allows(name: str) -> None:
    """The reference's own float32 output is up to ~5e-3 (SaShiMi) off its float64 one; ours
    is closer to the float64 truth than that, and within twice that of the reference's."""
    model, data = converted(name, torch.float32), golden(name)
    with torch.no_grad():
        eps = model.denoise(data["x"], data["t"])
    assert eps.dtype == torch.float32
    assert relative(eps, data["eps64"]) <= 1e-3
    assert relative(eps, data["eps32"]) <= 2 * max(relative(data["eps32"], data["eps64"]), 1e-6)


def test_the_reference_s4_fallback_bug_is_not_reproduced() -> None:
    model, data = converted("sashimi_tiny"), golden("sashimi_tiny")
    with torch.no_grad():
        eps = model.denoise(data["x"].double(), data["t"])
    assert relative(eps, data["eps64_unpatched_s4_cpu_fallback"]) > 1e-2


def test_a_full_fixed_noise_sampling_run_is_the_reference_run() -> None:
    run = torch.load(diffwave_dir("tiny") / "sashimi_tiny.sampling.pt", weights_only=False)
    model = converted("sashimi_tiny")
    noise = run["noise"].double()
    x, eps = model.ancestral(noise[0], model.schedule(), iter_noise(noise), keep=True)
    assert len(eps) == 200
    assert relative(torch.stack(eps), run["eps_traj_f64"]) <= 1e-9
    assert relative(x, run["sample_f64"]) <= 1e-9


# -- the full-size key layouts --------------------------------------------------------------
def state_from_keys(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of the listed shapes (random, decaying where S4 needs it): shapes only."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for line in path.read_text().splitlines()[1:]:
        key, shape, dtype, *_ = line.split("\t")
        size = [int(d) for d in shape.strip("[]").split(",") if d.strip()]
        if dtype == "int64":
            state[key] = torch.zeros(size, dtype=torch.int64)
            continue
        value = 0.02 * torch.randn(size, generator=generator)
        if key.endswith(".krylov.w"):
            value[..., 0] = -0.5
        state[key] = value
    return state


MASTER = {
    "sashimi_sc09": ("sashimi-diffwave-sc09", 23_470_971),
    "sashimi_small_sc09": ("sashimi-diffwave-small-sc09", 7_734_267),
    "wavenet_sc09": ("diffwave-sc09", 24_071_681),
    "wavenet_small_sc09": ("diffwave-small-sc09", 6_827_393),
}


def config_of(inferred: dict[str, object], l_max: int = 16000) -> DiffWaveConfig:
    """Our config from an inferred ``[model]`` table (the import command's resolution,
    without a registry)."""
    backbone = dict(inferred["backbone"])  # type: ignore[call-overload]
    name = backbone.pop("name")
    if name == "wavenet":
        choice = BackboneChoice(name="wavenet", config=WaveNetConfig(**backbone),
                                spec=WAVENET_BACKBONE)  # fmt: skip
    else:
        options = dict(backbone.pop("kernel"))
        options.pop("name")
        backbone["pool"] = tuple(backbone["pool"])
        backbone.setdefault("l_max", l_max)
        choice = BackboneChoice(
            name="sashimi", config=SaShiMiConfig(**backbone, kernel=kernel("s4", **options)),
            spec=SASHIMI_BACKBONE,
        )  # fmt: skip
    return DiffWaveConfig(step_embed=tuple(inferred["step_embed"]), backbone=choice)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(MASTER))
def test_every_master_key_list_converts_onto_its_preset(name: str) -> None:
    state = state_from_keys(diffwave_dir() / f"{name}.keys.tsv")
    layout = detect_layout(state)
    inferred, _ = infer_model(state, layout)
    preset, count = MASTER[name]
    assert infer_preset(inferred, layout) == preset
    model = build_diffwave(config_of(inferred))
    assert mismatches(model.state_dict(), rename(state, layout)) == []
    assert sum(p.numel() for p in model.parameters()) == count


BRANCH = {
    "sashimi_sc09": ("sashimi-diffwave-sc09", 22_964_091),
    "sashimi_small_sc09": ("sashimi-diffwave-small-sc09", 7_480_827),
    "wavenet_sc09": ("diffwave-sc09", 24_071_681),
    "wavenet_small_sc09": ("diffwave-small-sc09", 6_827_393),
}


@pytest.mark.parametrize("name", list(BRANCH))
def test_every_checkpoints_branch_key_list_converts_shapes_only(name: str) -> None:
    """The paper's released DiffWave files were made by the reference's ``checkpoints``
    branch: its SaShiMi layers (two kernels of S4's first form) map onto ``paired_kernels``
    layers key for key; its WaveNet keys are master's."""
    state = state_from_keys(diffwave_dir("checkpoints_branch") / f"{name}.keys.tsv")
    layout = detect_layout(state)
    inferred, notes = infer_model(state, layout)
    preset, theirs = BRANCH[name]
    assert infer_preset(inferred, layout) == preset
    model = build_diffwave(config_of(inferred))
    assert mismatches(model.state_dict(), rename(state, layout)) == []
    ours = sum(p.numel() for p in model.parameters())
    if name.startswith("wavenet"):
        assert layout == "diffwave-wavenet"
        assert ours == theirs
        return
    assert layout == "diffwave-sashimi-checkpoints"
    assert any("no outputs of that code exist" in note for note in notes)
    backbone = inferred["backbone"]
    assert backbone["paired_kernels"]
    assert backbone["kernel"]["separate_q"]
    # Ours also trains what the reference kept fixed: per layer of width H, each of its two
    # kernels has inv_dt (H) and A_real, A_imag, B, P (6 x 32 numbers) as parameters.
    widths = [v.numel() for k, v in state.items() if k.endswith(".layer.kernel.krylov.log_dt")]
    assert ours - theirs == 2 * sum(widths) + len(widths) * 2 * 6 * 32
    assert ours == {"sashimi_sc09": 22_990_971, "sashimi_small_sc09": 7_500_027}[name]


def test_the_checkpoints_branch_kernels_compute_the_old_kernel() -> None:
    """One layer of the old form, random, through :func:`paired_to_ours`, against the old
    kernel's definition evaluated by hand: ``A = diag(w) - p q^*`` over both halves of each
    conjugate pair, bilinear, output vector ``conj(C_tilde)`` tuned to length ``L``."""
    H, M, L = 3, 4, 32
    g = torch.Generator().manual_seed(1)

    def crandn(*shape: int) -> torch.Tensor:
        return torch.complex(torch.randn(shape, generator=g, dtype=torch.float64),
                             torch.randn(shape, generator=g, dtype=torch.float64))  # fmt: skip

    # decaying modes, imaginary parts of both signs
    w = torch.complex(-0.3 - torch.rand(M, generator=g, dtype=torch.float64),
                      3 * torch.randn(M, generator=g, dtype=torch.float64))  # fmt: skip
    Bp, Cq = crandn(2, M), crandn(H, 2, M)
    Cq[:, 1] = Bp[1] + 0.2 * Cq[:, 1]  # q trained away from p, as far as keeps A stable
    log_dt = torch.log(0.05 + 0.1 * torch.rand(H, generator=g, dtype=torch.float64))
    nodes = torch.zeros(L // 2 + 1, 2)
    old = {}
    for which in ("kernel", "kernel2"):
        old.update({
            f"d_layers.0.layer.{which}.krylov.w": torch.view_as_real(w),
            f"d_layers.0.layer.{which}.krylov.B": torch.view_as_real(Bp),
            f"d_layers.0.layer.{which}.krylov.C": torch.view_as_real(Cq),
            f"d_layers.0.layer.{which}.krylov.log_dt": log_dt,
            f"d_layers.0.layer.{which}.krylov.nodes": nodes,
            f"d_layers.0.layer.{which}.krylov.z": nodes,
        })  # fmt: skip
    ours = paired_to_ours(old)
    prefix = "denoiser.d_layers.0.layer.forward_kernel."
    k = DPLRKernel(H, l_max=L, d_state=2 * M, n_ssm=1, dt_transform="exp", separate_q=True)
    k = k.double()
    k.load_state_dict({n: ours[prefix + n] for n in k.state_dict()})
    assert k.l_max == L

    full = lambda x: torch.cat([x, x.conj()], dim=-1)  # noqa: E731
    dt = torch.exp(log_dt)
    A = torch.diag_embed(full(w)).expand(H, -1, -1) - torch.einsum(
        "n,hm->hnm", full(Bp[1]), full(Cq[:, 1]).conj()
    )
    eye = torch.eye(2 * M, dtype=A.dtype)
    back = eye - (dt / 2)[:, None, None] * A
    Abar = torch.linalg.solve(back, eye + (dt / 2)[:, None, None] * A)
    Bbar = torch.linalg.solve(back, (dt[:, None] * full(Bp[0]))[..., None])[..., 0]
    assert torch.linalg.eigvals(Abar).abs().max().item() < 1  # a stable system
    C_tilde = full(Cq[:, 0]).conj()  # the old kernel's output vector, tuned to L
    C = torch.linalg.solve((eye - torch.linalg.matrix_power(Abar, L)).mT, C_tilde[..., None])
    expected = []
    x = Bbar
    for _ in range(L):
        expected.append(torch.einsum("hn,hn->h", C[..., 0], x).real)
        x = torch.einsum("hnm,hm->hn", Abar, x)
    assert (k(L)[0][0] - torch.stack(expected, -1)).abs().max().item() <= 1e-9


def test_a_paired_denoiser_loads_a_checkpoints_branch_layer_set() -> None:
    config = DiffWaveConfig(step_embed=(32, 64, 512), backbone=sashimi(
        glu=False, paired_kernels=True,
        kernel=kernel("s4", d_state=64, n_ssm=1, dt_transform="exp", separate_q=True),
    ))  # fmt: skip
    model = build_diffwave(config)
    assert any(isinstance(m, PairedS4Block) for m in model.modules())
    with pytest.raises(ValueError, match="paired_kernels needs bidirectional = true"):
        SaShiMiConfig(paired_kernels=True)


# -- the model's contract -------------------------------------------------------------------
def tiny_model() -> DiffWave:
    config = DiffWaveConfig(step_embed=(8, 16, 16), backbone=BackboneChoice(
        name="sashimi", spec=SASHIMI_BACKBONE, config=SaShiMiConfig(
            d_model=4, n_layers=1, pool=(2,), l_max=64, bidirectional=True,
            kernel=kernel("s4", d_state=4),
        ),
    ))  # fmt: skip
    model = build_diffwave(config)
    assert isinstance(model, DiffWave)
    with torch.no_grad():  # the output layer starts at zero; make it say something
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.1)
    return model


def test_the_loss_is_reproducible_from_its_generator_and_trains() -> None:
    model = tiny_model()
    x = 0.1 * torch.randn(3, 64)
    a = model.loss(x, torch.Generator().manual_seed(5)).value
    b = model.loss(x, torch.Generator().manual_seed(5)).value
    assert torch.equal(a, b)
    a.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert (model.input_kind, model.loss_unit, model.generate_options) == (
        "waveform", "mse", ("steps",)
    )  # fmt: skip


def test_generation_is_seeded_batched_and_respaced() -> None:
    model = tiny_model()
    seen: list[int] = []
    out = model.generate(5, 64, batch=2, steps=4, generator=torch.Generator().manual_seed(0),
                         progress=seen.append)  # fmt: skip
    assert out.samples.shape == (5, 64)
    assert bool((out.samples.abs() <= 1).all())
    assert bool(out.log_likelihood.isnan().all())
    assert sum(seen) == 5 * 64
    again = model.generate(5, 64, batch=2, steps=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.samples, out.samples)
    assert model.training  # restored


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix": torch.zeros(1, 4)}, "diffwave generates whole clips"),
        ({"temperature": 0.9}, "apply to autoregressive models only"),
        ({"engine": "compiled"}, "diffwave has only the eager engine; got --engine compiled"),
        ({"steps": 300}, "generate.steps must be between 1 and the schedule's 200; got 300"),
    ],
)
def test_generation_options_of_other_models_are_refused(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_model().generate(1, 64, **kwargs)  # type: ignore[arg-type]


def test_a_sashimi_denoiser_names_the_length_it_needs() -> None:
    with pytest.raises(ValueError, match="a multiple of 2; got 63"):
        tiny_model().denoise(torch.zeros(1, 1, 63), torch.zeros(1, dtype=torch.long))
