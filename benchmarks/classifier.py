"""The SC09 classifier: feature extraction (what ``audio-run evaluate`` runs over every clip)
and one training step (what ``audio-run classifier train`` repeats), per preset.

    python benchmarks/classifier.py [--device cuda] [--batch 64] [--presets small resnext]

Prints one JSON object: device, versions, date, sizes, and per preset the median seconds and
clips per second of a feature pass and of a training step (forward, backward, AdamW).
"""

from __future__ import annotations

import argparse

import _bench

_bench.leave_folder()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--batch", type=int, default=64, help="clips per batch (64)")
    parser.add_argument("--runs", type=int, default=3, help="timed calls after a warm-up (3)")
    parser.add_argument(
        "--presets", nargs="+", default=["small", "resnext"], help="presets (small resnext)"
    )
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from audio_metrics.classifier import SC09Classifier
    from audio_metrics.commands import PRESETS
    from audio_metrics.config import ClassifierConfig

    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    torch.manual_seed(0)
    x = 0.1 * torch.randn(args.batch, 16000, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    results = {}
    for preset in args.presets:
        model = SC09Classifier(ClassifierConfig(**PRESETS[preset]), 10).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def features(model: SC09Classifier = model) -> None:
            model.eval()
            model.features(x)

        def step(
            model: SC09Classifier = model, optimizer: torch.optim.Optimizer = optimizer
        ) -> None:
            model.train()
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(F.cross_entropy(model(x), y))
            optimizer.step()

        results[preset] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "features": _bench.timed(features, args.runs, sync, args.batch),
            "train_step": _bench.timed(step, args.runs, sync, args.batch),
        }
    _bench.report("classifier", device.type, {"batch": args.batch, "clip_len": 16000}, results)


if __name__ == "__main__":
    main()
