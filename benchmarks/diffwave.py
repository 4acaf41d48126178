"""DiffWave's two hot paths: one training step, and one reverse (sampling) step.

Training: forward (noise-prediction MSE at random steps), backward and an Adam step on random
waveforms of ``--batch`` x ``--length`` samples, as ``audio-run train`` takes it (samples/s).
Sampling: one reverse step of the ancestral sampler (the denoiser on ``--gen-batch`` clips
with the S4 kernels computed once, as ``audio-run generate`` runs it); every step of a
schedule costs the same, so seconds per generated second of audio = step time x steps /
(clips x seconds per clip), reported for the full schedule (200) and ``--respaced`` steps.

    python benchmarks/diffwave.py [--models sashimi-small wavenet-small] [--device cuda]

Each case runs in a fresh interpreter. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import resource
from typing import Any

import _bench

_bench.leave_folder()

MODELS = ("sashimi", "sashimi-small", "wavenet", "wavenet-small")
PRESET = {
    "sashimi": "sashimi-diffwave-sc09",
    "sashimi-small": "sashimi-diffwave-small-sc09",
    "wavenet": "diffwave-sc09",
    "wavenet-small": "diffwave-small-sc09",
}


def build(name: str, length: int) -> Any:
    import attrs

    from audio_core.config import BackboneChoice
    from audio_models.builders import build_diffwave
    from audio_models.config import WAVENET_BACKBONE, DiffWaveConfig, WaveNetConfig

    config = DiffWaveConfig()  # the paper's SaShiMi + DiffWave
    backbone = config.backbone
    if name.startswith("sashimi"):
        d_model = 64 if name.endswith("small") else 128
        sashimi = attrs.evolve(backbone.config, d_model=d_model, l_max=length)
        config = attrs.evolve(config, backbone=attrs.evolve(backbone, config=sashimi))
    else:
        res, layers = (128, 10) if name.endswith("small") else (256, 12)
        wavenet = WaveNetConfig(
            residual_channels=res, skip_channels=256, layers=layers, blocks=3, kernel_size=3
        )
        choice = BackboneChoice(name="wavenet", config=wavenet, spec=WAVENET_BACKBONE)
        config = attrs.evolve(config, backbone=choice)
    return build_diffwave(config)


def run_case(case: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from ssm_kernels.block import cached_kernels

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    kind, name = case.split(":")
    device = torch.device(args.device)
    model = build(name, args.length).to(device)
    params = sum(p.numel() for p in model.parameters())

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    if kind == "train":
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
        x = 0.1 * torch.randn(args.batch, args.length, device=device)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            model(x).backward()
            optimizer.step()

        result = _bench.timed(step, args.runs, sync, args.batch * args.length)
        result["samples_per_s"] = result.pop("items_per_s")
    else:
        model.eval()
        x = torch.randn(args.gen_batch, 1, args.length, device=device)
        steps = torch.full((args.gen_batch,), 100, device=device)
        with torch.no_grad(), cached_kernels(model):
            result = _bench.timed(lambda: model.denoise(x, steps), args.runs, sync, 1)
        audio_s = args.gen_batch * args.length / 16000
        per_step = result["median_s"]
        result.pop("items_per_s")
        result["seconds_per_reverse_step"] = per_step
        result["s_per_generated_s_full_200"] = round(per_step * 200 / audio_s, 3)
        result[f"s_per_generated_s_respaced_{args.respaced}"] = round(
            per_step * args.respaced / audio_s, 3
        )
    if device.type == "cuda":
        result["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["parameters"] = params
    result["preset"] = PRESET[name]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--batch", type=int, default=4, help="training batch (4, the reference's)")
    parser.add_argument("--gen-batch", type=int, default=1, help="clips per reverse step (1)")
    parser.add_argument("--length", type=int, default=16000, help="samples per clip (16000)")
    parser.add_argument("--respaced", type=int, default=50, help="a shorter schedule (50)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (3)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = [f"{kind}:{m}" for m in args.models for kind in ("train", "sample")]
    sizes = {"batch": args.batch, "gen_batch": args.gen_batch, "length": args.length}
    _bench.run(__file__, args, run_case, names, "diffwave", sizes)


if __name__ == "__main__":
    main()
