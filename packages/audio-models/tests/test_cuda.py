"""The models on a CUDA GPU against the same models on the CPU (TF32 off): teacher-forced
logits, the eager step and SampleRNN's compiled step. Marked ``cuda`` and skipped where no GPU
exists (CI has none); ``benchmarks/gpu_check.sh`` runs them on a GPU machine."""

from __future__ import annotations

import pytest
import torch

from audio_models.builders import build_samplernn, build_sashimi, build_wavenet
from audio_models.config import SampleRNNConfig, SaShiMiModelConfig, WaveNetConfig
from audio_models.fast import samplernn as fast_samplernn
from audio_models.sampling import EagerStepper
from audio_models.testing import kernel

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture(autouse=True)
def _no_tf32() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "sashimi-s4": build_sashimi(SaShiMiModelConfig(d_model=16, n_layers=1, pool=(2, 2),
                                                       bits=4, kernel=kernel("s4", d_state=8))),
        "sashimi-s4d": build_sashimi(SaShiMiModelConfig(d_model=16, n_layers=1, pool=(2, 2),
                                                        bits=4, kernel=kernel("s4d", d_state=8))),
        "sashimi-s4-unet": build_sashimi(SaShiMiModelConfig(d_model=16, n_layers=1, pool=(2, 2),
                                                            bits=4, unet=True,
                                                            kernel=kernel("s4", d_state=8))),
        "wavenet": build_wavenet(WaveNetConfig(residual_channels=8, dilation_channels=8,
                                               skip_channels=16, end_channels=16, layers=3,
                                               blocks=2, d_model=8, d_output=8, bits=4)),
        "samplernn": build_samplernn(SampleRNNConfig(frame_sizes=(2, 2), d_hidden=16, n_rnn=1,
                                                     d_model=8, bits=4, tbptt=0)),
    }  # fmt: skip


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).abs().max() / a.square().mean().sqrt())


@pytest.mark.parametrize("name", ["sashimi-s4", "sashimi-s4d", "wavenet", "samplernn"])
def test_teacher_forced_logits_and_steps_on_the_gpu_equal_the_cpu(name: str) -> None:
    cpu = _models()[name].eval()
    gpu = _models()[name].cuda().eval()
    x = torch.randint(0, 16, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert _rel(cpu.logits(x), gpu.logits(x.cuda())) <= 1e-4
        cpu.setup_rnn()
        gpu.setup_rnn()
        a = EagerStepper(cpu, 2, torch.device("cpu"))
        b = EagerStepper(gpu, 2, torch.device("cuda"))
        for t in range(20):
            assert _rel(a.step(x[:, t]), b.step(x[:, t].cuda())) <= 1e-4


def test_samplernn_compiled_step_on_the_gpu_equals_its_eager_step() -> None:
    model = _models()["samplernn"].cuda().eval()
    device = torch.device("cuda")
    eager = EagerStepper(model, 3, device)
    folded = fast_samplernn.FoldedSampleRNNStepper(fast_samplernn.FoldedSampleRNN(model), 3, device)
    tokens = torch.randint(0, 16, (20, 3), device=device)
    with torch.no_grad():
        for t in range(20):
            assert _rel(eager.step(tokens[t]), folded.step(tokens[t])) <= 1e-4


def _forced_logits(sampler: object, eager: EagerStepper, tokens: torch.Tensor) -> float:
    """Teacher-force ``tokens (periods * P, batch)`` through both; the worst relative
    difference of the logits."""
    P, batch = sampler.period, tokens.shape[1]  # type: ignore[attr-defined]
    use = torch.ones(P, batch, dtype=torch.int32, device="cuda")
    prev = torch.full((batch,), eager.model.start_token, device="cuda")  # type: ignore[attr-defined]
    worst = 0.0
    for k in range(tokens.shape[0] // P):
        sampler.run(tokens[k * P : (k + 1) * P], use)  # type: ignore[attr-defined]
        for j in range(P):
            worst = max(worst, _rel(eager.step(prev), sampler.b.logits[j]))  # type: ignore[attr-defined]
            prev = tokens[k * P + j]
    return worst


@pytest.mark.parametrize("name", ["sashimi-s4", "sashimi-s4d", "sashimi-s4-unet"])
@pytest.mark.parametrize(("graph", "overlap"), [(False, None), (True, None), (True, False)])
def test_the_triton_engine_on_the_gpu_equals_the_eager_step(
    name: str, graph: bool, overlap: bool | None
) -> None:
    """Launched one by one, and as CUDA graphs with the tiers overlapped (the default, one
    stream per tier; the U-Net runs in order) and in order."""
    from audio_models.fast import fused

    model = _models()[name].cuda().eval()
    model.setup_rnn()
    for batch in (1, 5):
        sampler = fused.FusedSampler(fused.FusedSaShiMi(model), batch, graph=graph,
                                     overlap=overlap)  # fmt: skip
        assert sampler.overlap == (overlap is None and not name.endswith("unet"))
        seed = torch.zeros(1, dtype=torch.long, device="cuda")
        sampler.start(start_token=model.start_token, seed=seed, temperature=1.0, top_p=1.0)
        assert (sampler.graph is not None) == graph
        tokens = torch.randint(0, 16, (3 * sampler.period, batch), device="cuda")
        eager = EagerStepper(model, batch, torch.device("cuda"))
        with torch.no_grad():
            assert _forced_logits(sampler, eager, tokens) <= 1e-4


def test_a_replayed_cuda_graph_samples_what_direct_launches_sample() -> None:
    from audio_models.fast import fused

    model = _models()["sashimi-s4"].cuda().eval()
    f = fused.FusedSaShiMi(model)
    runs = []
    for graph in (False, True):
        sampler = fused.FusedSampler(f, 4, graph=graph)
        seed = torch.tensor([123], device="cuda")
        sampler.start(start_token=model.start_token, seed=seed, temperature=0.9, top_p=0.95)
        none = (torch.zeros(4, 4, dtype=torch.long, device="cuda"),
                torch.zeros(4, 4, dtype=torch.int32, device="cuda"))  # fmt: skip
        runs.append([sampler.run(*none) for _ in range(5)])
    for (tok_a, lp_a), (tok_b, lp_b) in zip(*runs, strict=True):
        assert torch.equal(tok_a, tok_b)
        assert torch.allclose(lp_a, lp_b)


@pytest.mark.parametrize("batch", [64, 256, 1024])
def test_the_sc09_preset_at_large_batches_matches_eager_with_the_default_launches(
    batch: int,
) -> None:
    """The launches chosen for large batches (blocks of 16 rows once gave logits 40 times
    their RMS off here, while every small test passed)."""
    from audio_models.fast import fused

    torch.manual_seed(0)
    model = build_sashimi(SaShiMiModelConfig()).cuda().eval()
    model.setup_rnn()
    sampler = fused.FusedSampler(fused.FusedSaShiMi(model), batch)
    sampler.start(start_token=model.start_token, seed=torch.zeros(1, dtype=torch.long,
                  device="cuda"), temperature=1.0, top_p=1.0)  # fmt: skip
    tokens = torch.randint(0, 256, (2 * sampler.period, batch), device="cuda")
    eager = EagerStepper(model, batch, torch.device("cuda"))
    with torch.no_grad():
        assert _forced_logits(sampler, eager, tokens) <= 1e-4


def test_auto_picks_the_triton_engine_on_the_gpu_and_the_sc09_preset_matches_eager() -> None:
    from audio_models.fast import fused
    from audio_models.sampling import generate

    model = build_sashimi(SaShiMiModelConfig()).cuda().eval()
    out = generate(model, 2, 40, batch=2, generator=torch.Generator("cuda").manual_seed(0))
    assert out.engine.startswith("triton"), out.passed_over
    want = model.log_likelihood(out.samples, start=0)
    assert torch.allclose(out.log_likelihood, want, rtol=1e-4, atol=1e-2)
    model.setup_rnn()
    sampler = fused.FusedSampler(fused.FusedSaShiMi(model), 2)
    sampler.start(start_token=model.start_token, seed=torch.zeros(1, dtype=torch.long,
                  device="cuda"), temperature=1.0, top_p=1.0)  # fmt: skip
    tokens = torch.randint(0, 256, (2 * sampler.period, 2), device="cuda")
    eager = EagerStepper(model, 2, torch.device("cuda"))
    with torch.no_grad():
        assert _forced_logits(sampler, eager, tokens) <= 1e-4
