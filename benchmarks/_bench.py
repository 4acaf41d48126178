"""What the benchmark scripts share: timing, one fresh interpreter per case, the JSON report.

Import it first, then call :func:`leave_folder`: ``benchmarks/ssm_kernels.py`` shares its
name with the package it measures, so this folder must be off ``sys.path`` before any
project package is imported.
"""

from __future__ import annotations

import datetime
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def leave_folder() -> None:
    """Remove the benchmarks folder from ``sys.path``."""
    here = Path(__file__).parent.resolve()
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]


def timed(
    fn: Callable[[], object], runs: int, sync: Callable[[], None], items: int
) -> dict[str, Any]:
    """One warm-up call, then ``runs`` timed calls (``sync`` waits for the device)."""
    fn()
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "runs": runs,
        "median_s": round(median, 6),
        "min_s": round(min(times), 6),
        "max_s": round(max(times), 6),
        "items_per_s": round(items / median, 1),
    }


def run_cases(script: str, names: Iterable[str]) -> dict[str, Any]:
    """Run ``script`` once per name with this command line plus ``--case NAME`` (each case in
    a fresh interpreter, so its peak memory is its own); collect the JSON each prints last. A
    case that fails is reported as ``{"error": ...}`` (its output's last lines, also echoed to
    stderr) and the others still run."""
    results: dict[str, Any] = {}
    for name in names:
        proc = subprocess.run(
            [sys.executable, script, *sys.argv[1:], "--case", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            continue
        sys.stderr.write(f"case {name} failed (exit {proc.returncode}):\n{proc.stderr}")
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        results[name] = {"error": f"exit {proc.returncode}", "output": tail}
    return results


def run(
    script: str,
    args: Any,
    run_case: Callable[[str, Any], dict[str, Any]],
    names: Iterable[str],
    benchmark: str,
    sizes: dict[str, int],
) -> None:
    """A benchmark's main: inside a ``--case`` child, run that case and print its JSON; in the
    parent, run every case in its own interpreter and print the report."""
    if args.case:
        print(json.dumps(run_case(args.case, args)))
        return
    threads = int(getattr(args, "threads", 0) or 0)
    results = run_cases(script, names)
    report(benchmark, args.device, sizes, results, threads)
    if any("error" in r for r in results.values()):
        sys.exit(1)


def report(
    benchmark: str,
    device: str,
    sizes: dict[str, int],
    results: dict[str, Any],
    threads: int = 0,
) -> None:
    """Print the JSON report: device, threads (``0``: torch's default), versions, date, sizes,
    per-case results."""
    import torch

    name = torch.cuda.get_device_name() if device == "cuda" else f"{platform.machine()} CPU"
    print(
        json.dumps(
            {
                "benchmark": benchmark,
                "date": datetime.date.today().isoformat(),
                "device": name,
                "threads": threads or torch.get_num_threads(),
                "torch": torch.__version__,
                "python": platform.python_version(),
                "sizes": sizes,
                "results": results,
            },
            indent=2,
        )
    )


def sashimi_train_step(
    device: Any, kernel: str, batch: int, length: int, precision: str, compile_backend: str
) -> tuple[Any, Callable[[], None]]:
    """The SaShiMi SC09 preset and one optimizer step of it as ``audio-run train`` takes it
    (forward under ``torch.compile(fullgraph=True)`` unless ``compile_backend`` is ``none``,
    autocast to bf16 when ``precision`` is ``bf16``, backward, clipping, AdamW over the
    runner's parameter groups) on random 8-bit codes of ``batch`` x ``length`` samples."""
    import torch

    from audio_core.optim import param_groups
    from audio_models.builders import build_sashimi
    from audio_models.config import SaShiMiModelConfig
    from audio_models.testing import kernel as kernel_config

    config = SaShiMiModelConfig(kernel=kernel_config(kernel, d_state=64), l_max=length)
    model = build_sashimi(config).to(device)
    optimizer = torch.optim.AdamW(param_groups(model, lr=0.004, weight_decay=0.0), lr=0.004)
    x = torch.randint(0, 256, (batch, length), device=device)
    forward = (
        model
        if compile_backend == "none"
        else torch.compile(model, fullgraph=True, backend=compile_backend)
    )

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = forward(x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return model, step
