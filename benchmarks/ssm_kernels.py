"""S4 and S4D: kernel generation, layer training step, recurrent step, peak memory.

For each kernel (``s4``, ``s4d``), in its own fresh interpreter so that peak memory is its own:

- ``kernel``: computing the ``(H, L)`` convolution kernel (no autograd);
- ``layer_fwd_bwd``: an ``S4Block`` forward + backward on ``(B, L, H)`` input;
- ``step_b1`` / ``step_b64``: one recurrent step of the block (``linear`` mode for S4, the
  diagonal recurrence for S4D) at batch 1 and 64, in samples per second;
- ``peak_mib``: the process's peak resident memory (CPU) or the peak CUDA allocation.

    python benchmarks/ssm_kernels.py [--device cpu|cuda] [--batch 16] [--length 16000]

Prints one JSON object: device, versions, date, sizes and per kernel per case the median,
min and max wall time in seconds and the throughput.
"""

from __future__ import annotations

import argparse
import resource
from typing import Any

import _bench

_bench.leave_folder()


def run_case(kernel_name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from ssm_kernels import S4Config, S4DConfig, build_block

    torch.manual_seed(0)
    device = torch.device(args.device)
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    config = S4Config() if kernel_name == "s4" else S4DConfig()
    H, L, B = args.d_model, args.length, args.batch
    block = build_block(config, d_model=H, l_max=L).to(device)
    out: dict[str, Any] = {"config": {"d_state": config.d_state, "init": config.init}}
    with torch.no_grad():
        out["kernel"] = _bench.timed(lambda: block.kernel(L), args.runs, sync, H * L)
    u = torch.randn(B, L, H, device=device)

    def fwd_bwd() -> None:
        y, _ = block(u)
        y.square().mean().backward()

    out["layer_fwd_bwd"] = _bench.timed(fwd_bwd, args.runs, sync, B * L)
    mode = "linear" if kernel_name == "s4" else "diagonal"
    block.setup_step(mode)
    out["step_mode"] = mode
    for batch in (1, 64):
        state = block.default_state(batch, device=device)
        x = torch.randn(batch, H, device=device)
        steps = args.steps

        def stepping(state: Any = state, x: torch.Tensor = x, steps: int = steps) -> None:
            with torch.no_grad():
                for _ in range(steps):
                    _, state = block.step(x, state)

        result = _bench.timed(stepping, args.runs, sync, steps * batch)
        result["steps_per_s"] = round(steps / result["median_s"], 1)
        out[f"step_b{batch}"] = result
    if cuda:
        out["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        out["peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--batch", type=int, default=16, help="batch of the layer step (16)")
    parser.add_argument("--length", type=int, default=16000, help="sequence length (16000)")
    parser.add_argument("--d-model", type=int, default=64, help="channels H (64)")
    parser.add_argument("--runs", type=int, default=5, help="timed repetitions (5)")
    parser.add_argument("--steps", type=int, default=200, help="recurrent steps per run (200)")
    parser.add_argument("--kernels", nargs="+", default=["s4", "s4d"], choices=["s4", "s4d"])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = {"batch": args.batch, "d_model": args.d_model, "length": args.length}
    _bench.run(__file__, args, run_case, args.kernels, "ssm_kernels", sizes)


if __name__ == "__main__":
    main()
