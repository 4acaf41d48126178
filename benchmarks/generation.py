"""Autoregressive generation and training throughput of SaShiMi, WaveNet and SampleRNN.

For each model preset (the paper's SC09 sizes), in its own fresh interpreter:

- ``generate_b1`` / ``generate_b64`` (``--gen-batches``): ``--steps`` generation steps (eager
  recurrent mode, S4 ``linear`` step mode) at batch 1 and 64: steps and samples per second;
- ``generate_b{1,16,64}_compiled``: the same with the model's
  ``compiled`` engine (``audio_models.fast``, ``audio-run generate --engine compiled``:
  the fused C steps of SaShiMi and WaveNet on the CPU, SampleRNN's folded step anywhere),
  ``8 * --steps`` steps (``--steps`` at batch 64), batches split across the threads;
- ``sample_b{1,16,64}_compiled``: the same steps with the sampling inside the C step (SaShiMi:
  ``CompiledStepper.sample_block``, 128 steps per call, a block's Exp(1) noise drawn at once,
  as ``generate()`` samples), temperature 1, ``top_p = 1``;
- ``generate_b{B}_triton`` (CUDA): the ``triton`` engine, free sampling at each
  ``--gen-batches`` batch, a period per CUDA graph replay, up to ``8 * --steps`` steps per
  run (fewer where a run would pass 0.5 s) (``triton_setup_b{B}_s``: compiling and
  capturing);
- ``train``: one forward + backward of the teacher-forced loss at ``--batch`` x ``--length``
  samples: samples (tokens) per second;
- ``peak_mib``: peak resident memory (CPU) or peak CUDA allocation.

    python benchmarks/generation.py [--device cuda] [--models sashimi wavenet samplernn]

Prints one JSON object with device, versions, date, sizes and per model per case the median,
min and max wall time in seconds and the throughput.
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import _bench

_bench.leave_folder()

MODELS = ("sashimi", "sashimi-s4d", "wavenet", "samplernn")


def build(name: str) -> Any:
    from audio_models.builders import build_samplernn, build_sashimi, build_wavenet
    from audio_models.config import SampleRNNConfig, SaShiMiModelConfig, WaveNetConfig
    from audio_models.testing import kernel

    if name == "sashimi":
        return build_sashimi(SaShiMiModelConfig())
    if name == "sashimi-s4d":
        return build_sashimi(SaShiMiModelConfig(kernel=kernel("s4d", d_state=64)))
    if name == "wavenet":
        return build_wavenet(WaveNetConfig())
    return build_samplernn(SampleRNNConfig())


def run_case(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    model = build(name).to(device)
    out: dict[str, Any] = {
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3)
    }
    model.eval()
    model.setup_rnn("linear")
    for batch in args.gen_batches:
        steps = args.steps

        with torch.no_grad():  # outside the timing: WaveNet primes its queues here
            state = model.default_state(batch, device=device)

        def generate(batch: int = batch, steps: int = steps, state: Any = state) -> None:
            with torch.no_grad():
                prev = torch.full((batch,), model.start_token, device=device)
                for _ in range(steps):
                    logits, state = model.step(prev, state)
                    prev = logits.argmax(-1)

        result = _bench.timed(generate, args.runs, sync, steps * batch)
        result["steps_per_s"] = round(steps / result["median_s"], 1)
        result["samples_per_s"] = result.pop("items_per_s")
        out[f"generate_b{batch}"] = result
    spec = model.engines.get("compiled")
    if spec is not None and "compiled" in args.engines and spec.auto(model, 1, device) is None:
        start = time.perf_counter()
        factory = spec.prepare(model, 1, device)  # compiles a C step on first use, then cached
        out["compiled_setup_s"] = round(time.perf_counter() - start, 3)
        for batch in (1, 16, 64):
            steps = args.steps * 8 if batch < 64 else args.steps  # fast: time more of them
            stepper = factory(batch)  # outside the timing, as the eager state

            def compiled(batch: int = batch, steps: int = steps, stepper: Any = stepper) -> None:
                prev = torch.full((batch,), model.start_token, device=device)
                for _ in range(steps):
                    prev = stepper.step(prev).argmax(-1)

            result = _bench.timed(compiled, args.runs, sync, steps * batch)
            result["steps_per_s"] = round(steps / result["median_s"], 1)
            result["samples_per_s"] = result.pop("items_per_s")
            out[f"generate_b{batch}_compiled"] = result
            if not getattr(stepper, "block", 0):
                continue

            def sampled(
                batch: int = batch, steps: int = steps, stepper: Any = stepper
            ) -> None:  # generate()'s loop: a block's noise, then the C step samples it
                generator = torch.Generator().manual_seed(0)
                prev = torch.full((batch,), model.start_token, device=device)
                none = torch.empty(0, batch, dtype=torch.long)
                for t0 in range(0, steps, stepper.block):
                    n = min(stepper.block, steps - t0)
                    noise = torch.empty(n, batch, model.n_classes, dtype=torch.float64)
                    noise.exponential_(generator=generator)
                    tokens, _ = stepper.sample_block(prev, n, none, noise, 1.0)
                    prev = tokens[-1]

            result = _bench.timed(sampled, args.runs, sync, steps * batch)
            result["steps_per_s"] = round(steps / result["median_s"], 1)
            result["samples_per_s"] = result.pop("items_per_s")
            out[f"sample_b{batch}_compiled"] = result
    spec = model.engines.get("triton")
    if spec is not None and "triton" in args.engines and spec.auto(model, 1, device) is None:
        factory = spec.prepare(model, 1, device)
        for batch in args.gen_batches:
            sampler = factory(batch)
            seed = torch.zeros(1, dtype=torch.long, device=device)
            start = time.perf_counter()  # the first start compiles and captures the graph
            sampler.start(start_token=model.start_token, seed=seed, temperature=1.0, top_p=1.0)
            sync()
            out[f"triton_setup_b{batch}_s"] = round(time.perf_counter() - start, 3)
            shape = (sampler.period, batch)
            none = (torch.zeros(shape, dtype=torch.long, device=device),
                    torch.zeros(shape, dtype=torch.int32, device=device))  # fmt: skip
            start = time.perf_counter()  # one period, to size the timed runs to ~0.5 s
            sampler.run(*none)
            sync()
            once = time.perf_counter() - start
            periods = max(1, min(args.steps * 8 // sampler.period, int(0.5 / once)))

            def fused(sampler: Any = sampler, periods: int = periods, none: Any = none) -> None:
                for _ in range(periods):
                    sampler.run(*none)

            result = _bench.timed(fused, args.runs, sync, periods * sampler.period * batch)
            result["steps_per_s"] = round(periods * sampler.period / result["median_s"], 1)
            result["samples_per_s"] = result.pop("items_per_s")
            out[f"generate_b{batch}_triton"] = result
    if args.train_runs == 0:
        return out
    model.train()
    x = torch.randint(0, model.n_classes, (args.batch, args.length), device=device)

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        model.loss(x).nats.backward()

    result = _bench.timed(train_step, args.train_runs, sync, args.batch * args.length)
    result["samples_per_s"] = result.pop("items_per_s")
    out["train"] = result
    if cuda:
        out["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        out["peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--steps", type=int, default=64, help="generation steps per run (64)")
    parser.add_argument("--runs", type=int, default=3, help="timed generation runs (3)")
    parser.add_argument("--batch", type=int, default=16, help="training batch (16)")
    parser.add_argument("--length", type=int, default=16000, help="training length (16000)")
    parser.add_argument(
        "--train-runs", type=int, default=2, help="timed training steps (2; 0: no training row)"
    )
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["eager", "compiled", "triton"],
        choices=["eager", "compiled", "triton"],
        help="generation engines to time (eager compiled triton), each where --engine auto "
        "would pick it: compiled for SaShiMi and WaveNet on the CPU, SampleRNN anywhere; "
        "triton for SaShiMi on CUDA (a period of free sampling per call, CUDA graph "
        "replayed; 8 * --steps steps at every --gen-batches batch)",
    )
    parser.add_argument(
        "--gen-batches",
        nargs="+",
        type=int,
        default=[1, 64],
        metavar="B",
        help="batches of the eager generation cases (1 64)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = {"batch": args.batch, "length": args.length, "steps": args.steps}
    _bench.run(__file__, args, run_case, args.models, "generation", sizes)


if __name__ == "__main__":
    main()
