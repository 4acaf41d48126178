"""Start-up cost of ``audio-run``: what every invocation pays before doing any work.

Times, in fresh interpreters, the commands a user types most (``--help``, ``plugins``,
``list``, ``config``) with whatever plugins are installed, and in-process the three steps
behind them (building the plugin manager, the registry, resolving a configuration). For
scale it also times ``import torch``, which none of those commands may pay.

    python benchmarks/cli_startup.py [--runs 15]

Prints one JSON object: device, versions, date, and per case the median, min and max wall
time in seconds and the throughput (invocations per second at the median).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

MODEL_PLUGIN = """
from attrs import frozen
from audio_core import ModelSpec, hookimpl

@frozen(kw_only=True)
class BenchModel:
    d_model: int = 64
    pool: tuple[int, ...] = (4, 4)

@hookimpl
def register_models():
    return [ModelSpec(name="bench", config_cls=BenchModel, target="m:b", summary="b")]
"""


def timed(fn: Callable[[], object], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "runs": runs,
        "median_s": round(median, 6),
        "min_s": round(min(times), 6),
        "max_s": round(max(times), 6),
        "per_s": round(1 / median, 2),
    }


AUDIO_RUN = Path(sys.executable).parent / "audio-run"  # the installed console script


def cli(argv: list[str], env: dict[str, str]) -> Callable[[], object]:
    def run() -> None:
        result = subprocess.run(
            [str(AUDIO_RUN), *argv],
            capture_output=True,
            env=env,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"audio-run {' '.join(argv)} failed: {result.stderr.decode()}")

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="repetitions per case (default 15)")
    args = parser.parse_args()

    from audio_core import Registry, make_plugin_manager, resolve_run_config

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "bench_model.py").write_text(MODEL_PLUGIN)
        env = {**os.environ, "PYTHONPATH": folder, "AUDIO_RUN_PLUGINS": "bench_model"}
        sys.path.insert(0, folder)
        pm = make_plugin_manager(environ=env)
        registry = Registry.from_plugin_manager(pm)
        dataset = next(iter(registry.datasets), None)
        config_args = ["config", "--model", "bench", "model.d_model=128"]
        if dataset is not None:
            config_args += ["--dataset", dataset]
        cases: dict[str, dict[str, float]] = {
            "python -c pass": timed(
                lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.runs
            ),
            "audio-run --help": timed(cli(["--help"], env), args.runs),
            "audio-run plugins --json": timed(cli(["plugins", "--json"], env), args.runs),
            "audio-run list": timed(cli(["list"], env), args.runs),
            "make_plugin_manager()": timed(lambda: make_plugin_manager(environ=env), args.runs),
            "Registry.from_plugin_manager()": timed(
                lambda: Registry.from_plugin_manager(pm), args.runs
            ),
        }
        if dataset is not None:
            cases["audio-run " + " ".join(config_args)] = timed(cli(config_args, env), args.runs)
            cases["resolve_run_config()"] = timed(
                lambda: resolve_run_config(
                    registry, model="bench", dataset=dataset, overrides=["model.d_model=128"]
                ),
                args.runs,
            )
        if importlib.util.find_spec("torch") is not None:
            cases["python -c 'import torch' (for scale)"] = timed(
                lambda: subprocess.run([sys.executable, "-c", "import torch"], check=True),
                max(3, args.runs // 3),
            )
    report = {
        "benchmark": "cli_startup",
        "date": datetime.date.today().isoformat(),
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sashimi-audio-core": version("sashimi-audio-core"),
        "plugins": [info.label for info in pm.infos()],
        "sizes": {
            name: len(registry.specs(name))  # type: ignore[arg-type]
            for name in ("kernels", "backbones", "models", "datasets", "metrics")
        },
        "results": cases,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
