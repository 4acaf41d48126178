"""One optimizer step of the SaShiMi SC09 preset, as ``audio-run train`` takes it.

Forward, backward, gradient clipping and an AdamW step over the runner's parameter groups
(SSM parameters capped at their own learning rate), on random 8-bit codes of ``--batch`` x
``--length`` samples. Reports tokens (samples) per second and the peak memory: resident set on
CPU, peak CUDA allocation on a GPU.

    python benchmarks/train_step.py [--device cuda] [--kernel s4|s4d] [--batch 16]

Prints one JSON object: device, versions, date, sizes, median / min / max seconds per step.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import statistics
import time

import _bench

_bench.leave_folder()  # benchmarks/ssm_kernels.py would shadow the ssm_kernels package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--kernel", default="s4", choices=["s4", "s4d"], help="SSM kernel (s4)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (16)")
    parser.add_argument("--length", type=int, default=16000, help="samples per example (16000)")
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="timed steps after one warm-up (3; 0: the warm-up alone, to fill compile caches)",
    )
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument(
        "--compile",
        default="none",
        choices=["none", "inductor", "eager"],
        help="run the forward under torch.compile(fullgraph=True) with this backend, as "
        "train.compile does (none); the warm-up step compiles and is reported apart",
    )
    args = parser.parse_args()

    import torch

    torch.manual_seed(0)
    device = torch.device(args.device)
    model, step = _bench.sashimi_train_step(
        device, args.kernel, args.batch, args.length, args.precision, args.compile
    )

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    start = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - start
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times) if times else float("nan")
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
        name = torch.cuda.get_device_name()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        name = f"{platform.machine()} CPU"
    print(
        json.dumps(
            {
                "benchmark": "train_step",
                "date": datetime.date.today().isoformat(),
                "device": name,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "model": f"sashimi SC09 preset, kernel {args.kernel}",
                "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
                "sizes": {"batch": args.batch, "length": args.length},
                "precision": args.precision,
                "compile": args.compile,
                "first_step_s": round(first, 2),
                "runs": args.runs,
                "median_s": round(median, 4),
                "min_s": round(min(times, default=float("nan")), 4),
                "max_s": round(max(times, default=float("nan")), 4),
                "tokens_per_s": round(args.batch * args.length / median, 1),
                "peak_mib": round(peak, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
