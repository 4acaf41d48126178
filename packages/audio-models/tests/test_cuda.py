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
