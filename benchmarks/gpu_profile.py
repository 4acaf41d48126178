"""Where the GPU time goes, for the SaShiMi SC09 preset (run by ``gpu_check.sh``).

The ``triton`` engine's launches per tier, its launch settings, and the training step's
operators:

- ``generation``: for each ``--kernels`` kernel and ``--batches`` batch, the device time of
  each tier's launch (CUDA events around each launch of a period run without the graph), the
  sum over a period, and the wall time of a period replayed as a CUDA graph with the tiers
  overlapped (the default) and in order, each with its error against the eager step;
- ``training``: one optimizer step (``train_step.py``'s, ``--precision``, ``--compile``)
  under ``torch.profiler``: the ``--top`` operators by CUDA time, and the peak allocation;
- ``sweep`` (CUDA): the engine's launch settings (rows per program, warps, tile budgets,
  registers or scratch) per tier at each ``--sweep-batches`` batch, the fastest per tier
  combined and the defaults replayed as CUDA graphs, with their error against the eager step.

    python benchmarks/gpu_profile.py [--device cuda] [--part generation training]

Prints one JSON object. On the CPU (a rehearsal) the events are wall-clock times.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from typing import Any

import _bench

_bench.leave_folder()


TINY = False  # --tiny: a small model, for a rehearsal on the CPU under TRITON_INTERPRET=1


def _model(kernel_name: str, device: Any, length: int = 16000) -> Any:
    from audio_models.builders import build_sashimi
    from audio_models.config import SaShiMiModelConfig
    from audio_models.testing import kernel

    sizes: dict[str, Any] = {"d_model": 8, "n_layers": 1, "bits": 4} if TINY else {}
    config = SaShiMiModelConfig(kernel=kernel(kernel_name, d_state=8 if TINY else 64),
                                l_max=length, **sizes)  # fmt: skip
    return build_sashimi(config).to(device)


class _Clock:
    """CUDA events on a GPU, ``perf_counter`` on the CPU; milliseconds."""

    def __init__(self, device: Any) -> None:
        import torch

        self.cuda = device.type == "cuda"
        self.torch = torch

    def mark(self) -> Any:
        if self.cuda:
            event = self.torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def between(self, a: Any, b: Any) -> float:
        if self.cuda:
            return float(a.elapsed_time(b))
        return (b - a) * 1e3

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()


def generation(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from audio_models.fast import fused

    device = torch.device(args.device)
    clock = _Clock(device)
    out: dict[str, Any] = {}
    for name in args.kernels:
        torch.manual_seed(0)
        model = _model(name, device).eval()
        model.setup_rnn()
        f = fused.FusedSaShiMi(model)
        backend = "triton" if device.type == "cuda" else "torch"
        for batch in args.batches:
            sampler = fused.FusedSampler(f, batch, backend=backend, graph=False)
            seed = torch.zeros(1, dtype=torch.long, device=device)
            sampler.start(start_token=model.start_token, seed=seed, temperature=1.0, top_p=1.0)
            b = sampler.b
            sampler.period_fn(b)  # compiles every tier's kernel
            clock.sync()
            per_tier = _tier_samples(sampler, clock, args.periods)
            tiers = {
                f"tier{i}": {
                    "launches_per_period": len(v) // args.periods,
                    "median_us": round(statistics.median(v) * 1e3, 2),
                    "min_us": round(min(v) * 1e3, 2),
                }
                for i, v in sorted(per_tier.items())
            }
            kernels_us = sum(t["median_us"] * t["launches_per_period"] for t in tiers.values())
            row: dict[str, Any] = {"tiers": tiers, "kernels_per_period_us": round(kernels_us, 1)}
            if device.type == "cuda":  # the period as a graph: overlapped, and in order
                defaults = [fused.default_launch(t.d, batch) for t in f.tiers]
                row["graph"] = _graphed(f, model, batch, defaults, clock, args.periods)
                if f.overlap_refused() is None:
                    row["graph_in_order"] = _graphed(f, model, batch, defaults, clock,
                                                     args.periods, overlap=False)  # fmt: skip
            out[f"{name}_b{batch}"] = row
    return out


def _tier_samples(sampler: Any, clock: _Clock, periods: int) -> dict[int, list[float]]:
    """Each tier's launch times (milliseconds) over ``periods`` periods run launch by launch
    (``sampler`` built with ``graph=False``; its torch twin in a CPU rehearsal)."""
    b = sampler.b
    times: dict[int, list[float]] = {}
    for _ in range(periods):
        marks = []
        for step in sampler.schedule():
            start = clock.mark()
            sampler.launch(step, b)
            marks.append((step.tier, start, clock.mark()))
        sampler.end_period(b)
        clock.sync()
        for i, s, e in marks:
            times.setdefault(i, []).append(clock.between(s, e))
    return times


def _tier_times(sampler: Any, clock: _Clock, periods: int) -> list[float]:
    """Median device microseconds of each tier's launch (see :func:`_tier_samples`)."""
    times = _tier_samples(sampler, clock, periods)
    return [round(statistics.median(times[i]) * 1e3, 2) for i in sorted(times)]


def _graphed(f: Any, model: Any, batch: int, launches: Any, clock: _Clock, periods: int,
             overlap: bool | None = None) -> dict[str, Any]:  # fmt: skip
    """A period replayed as a CUDA graph with these launches: its wall time and throughput,
    and the worst relative difference of its teacher-forced logits from the eager step's
    over two periods."""
    import torch

    from audio_models.fast import fused
    from audio_models.sampling import EagerStepper

    device = f.device
    sampler = fused.FusedSampler(f, batch, launches=launches, overlap=overlap)
    seed = torch.zeros(1, dtype=torch.long, device=device)
    sampler.start(start_token=model.start_token, seed=seed, temperature=1.0, top_p=1.0)
    P = sampler.period
    tokens = torch.randint(0, f.classes, (2 * P, batch), device=device,
                           generator=torch.Generator(device).manual_seed(1))  # fmt: skip
    use = torch.ones(P, batch, dtype=torch.int32, device=device)
    eager = EagerStepper(model, batch, device)
    prev = torch.full((batch,), model.start_token, device=device)
    worst = 0.0
    with torch.no_grad():
        for k in range(2):
            sampler.run(tokens[k * P : (k + 1) * P], use)
            for j in range(P):
                a = eager.step(prev).double()
                d = (a - sampler.b.logits[j].double()).abs().max() / a.square().mean().sqrt()
                worst = max(worst, float(d))
                prev = tokens[k * P + j]
    sampler.start(start_token=model.start_token, seed=seed, temperature=1.0, top_p=1.0)
    none = (torch.zeros(P, batch, dtype=torch.long, device=device),
            torch.zeros(P, batch, dtype=torch.int32, device=device))  # fmt: skip
    sampler.run(*none)
    clock.sync()
    a = clock.mark()
    for _ in range(periods):
        if sampler.graph is not None:
            sampler.graph.replay()
        else:  # a rehearsal on the CPU
            sampler.period_fn(sampler.b)
    e = clock.mark()
    clock.sync()
    period_us = clock.between(a, e) * 1e3 / periods
    return {
        "launches": [vars(x) for x in launches],
        "overlap": sampler.overlap,
        "period_us": round(period_us, 1),
        "steps_per_s": round(P / (period_us / 1e6), 1),
        "samples_per_s": round(P * batch / (period_us / 1e6), 1),
        "max_rel_err_vs_eager": worst,
    }


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    """Launch settings of the ``triton`` engine: for the first kernel and each batch, every
    candidate launch on all tiers, each tier's device time per launch; then the fastest
    launch of each tier combined, and the default launches, replayed as CUDA graphs (the
    other kernels: those two only). Each entry is also printed as a JSON line when done."""
    import torch

    from audio_models.fast import fused

    device = torch.device(args.device)
    clock = _Clock(device)
    out: dict[str, Any] = {}
    chosen_for: dict[int, list[Any]] = {}  # batch -> the first kernel's fastest launches
    for index, name in enumerate(args.kernels):
        torch.manual_seed(0)
        model = _model(name, device).eval()
        model.setup_rnn()
        f = fused.FusedSaShiMi(model)
        for batch in args.sweep_batches:
            if index > 0:  # the other kernels: the first one's choice and the defaults
                entry = {"default": _graphed(f, model, batch, [fused.default_launch(t.d, batch)
                                                               for t in f.tiers], clock,
                                             args.periods)}  # fmt: skip
                if batch in chosen_for:
                    entry["best"] = _graphed(f, model, batch, chosen_for[batch], clock,
                                             args.periods)  # fmt: skip
                out[f"{name}_b{batch}"] = entry
                print(json.dumps({f"{name}_b{batch}": entry}), flush=True)
                continue
            if batch == 1:
                candidates = [fused.Launch(block=1, warps=4, reg=False)] + [
                    fused.Launch(block=1, warps=w, tile=1024 * s, ssm_tile=256 * s)
                    for w in (4, 8, 16)
                    for s in (1, 2, 4)
                ]
            else:
                candidates = [fused.Launch(block=bb, warps=w) for bb in (1, 2, 4, 8, 16)
                              for w in (4, 8) if bb < batch]  # fmt: skip
            rows, best = [], [None] * len(f.tiers)
            for cand in candidates:
                launches = [cand] * len(f.tiers)
                try:
                    sampler = fused.FusedSampler(f, batch, graph=False, launches=launches)
                    seed = torch.zeros(1, dtype=torch.long, device=device)
                    sampler.start(start_token=model.start_token, seed=seed, temperature=1.0,
                                  top_p=1.0)  # fmt: skip
                    sampler.period_fn(sampler.b)  # compiles
                    clock.sync()
                    us = _tier_times(sampler, clock, args.periods)
                except Exception as exc:  # noqa: BLE001 (a candidate that fails is recorded)
                    rows.append({"launch": vars(cand), "error": str(exc).splitlines()[0][:200]})
                    continue
                rows.append({"launch": vars(cand), "tier_us": us})
                for i, t in enumerate(us):
                    if best[i] is None or t < best[i][0]:
                        best[i] = (t, cand)
            entry: dict[str, Any] = {"candidates": rows}
            if all(b is not None for b in best):
                chosen = [b[1] for b in best]  # type: ignore[index]
                chosen_for[batch] = chosen
                entry["best"] = _graphed(f, model, batch, chosen, clock, args.periods)
            defaults = [fused.default_launch(t.d, batch) for t in f.tiers]
            entry["default"] = _graphed(f, model, batch, defaults, clock, args.periods)
            out[f"{name}_b{batch}"] = entry
            print(json.dumps({f"{name}_b{batch}": entry}), flush=True)  # kept if cut short
    return out


def training(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(args.device)
    torch.manual_seed(0)
    _, step = _bench.sashimi_train_step(
        device, args.train_kernel, args.batch, args.length, args.precision, args.compile
    )
    clock = _Clock(device)

    step()
    step()
    clock.sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        step()
        clock.sync()
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=args.top, max_name_column_width=60)
    out = {
        "kernel": args.train_kernel,
        "precision": args.precision,
        "compile": args.compile,
        "sizes": {"batch": args.batch, "length": args.length},
        "profiled_step_s": round(time.perf_counter() - start, 3),
        "table": table.splitlines(),
    }
    if device.type == "cuda":
        out["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a rehearsal (cuda)")
    parser.add_argument("--part", nargs="+", default=["generation", "training"],
                        choices=["generation", "training", "sweep"])  # fmt: skip
    parser.add_argument("--sweep-batches", nargs="+", type=int, default=[1, 64, 256, 1024],
                        metavar="B")  # fmt: skip
    parser.add_argument("--kernels", nargs="+", default=["s4", "s4d"], choices=["s4", "s4d"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 1024], metavar="B")
    parser.add_argument("--periods", type=int, default=8, help="periods timed (8)")
    parser.add_argument("--train-kernel", default="s4", choices=["s4", "s4d"])
    parser.add_argument("--batch", type=int, default=16, help="training batch (16)")
    parser.add_argument("--length", type=int, default=16000, help="training length (16000)")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--compile", default="none", choices=["none", "inductor", "eager"])
    parser.add_argument("--top", type=int, default=30, help="operators listed (30)")
    parser.add_argument(
        "--tiny", action="store_true", help="a small model, not the SC09 preset (CPU rehearsal)"
    )
    args = parser.parse_args()
    global TINY
    TINY = args.tiny

    import torch

    report: dict[str, Any] = {
        "benchmark": "gpu_profile",
        "date": datetime.date.today().isoformat(),
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "CPU",
        "torch": torch.__version__,
    }
    parts = {"generation": generation, "training": training, "sweep": sweep}
    for part in args.part:
        report[part] = parts[part](args)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
