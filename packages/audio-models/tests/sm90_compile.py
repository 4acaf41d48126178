"""Compile the ``triton`` engine's tier kernels of the SC09 preset for sm_90 (H100 / H200)
on a machine without a GPU; print, per tier, the registers, stack bytes and spill
instructions as JSON. Usage: ``python sm90_compile.py s4|s4d|s4-unet BATCH [TOP_P]`` (the
U-Net: its SC09 sizes with the down path's layers and skips; run by
``test_triton.py`` in a fresh interpreter, without ``TRITON_INTERPRET``)."""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
import tempfile

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from audio_models.builders import build_sashimi
from audio_models.config import SaShiMiModelConfig
from audio_models.fast import fused
from audio_models.fast.triton_tier import tier_kernel
from audio_models.testing import kernel

KINDS = {torch.float32: "*fp32", torch.float64: "*fp64", torch.int64: "*i64", torch.int32: "*i32"}
TOOLS = pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin"


def signature(args: list[object], constants: dict[str, object]) -> dict[str, str]:
    values, out = iter(args), {}
    for name in tier_kernel.arg_names:
        if name in constants:
            out[name] = "constexpr"
            continue
        value = next(values)
        if isinstance(value, torch.Tensor):
            out[name] = KINDS[value.dtype]
        else:
            out[name] = "i32" if isinstance(value, int) else "fp32"
    return out


def report(sampler: fused.FusedSampler, tier: int, top_p: float) -> dict[str, int]:
    step = next(s for s in sampler.schedule() if s.tier == tier)  # the variant that runs
    args, constants = sampler.launch_args(step, sampler.b, 1.0, top_p)
    index = {(tier_kernel.arg_names.index(k),): v for k, v in constants.items()}
    source = ASTSource(tier_kernel, signature(args, constants), constexprs=index)
    warps = sampler.launches[tier].warps
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": warps})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cubin = pathlib.Path(tmp) / "tier.cubin"
        cubin.write_bytes(compiled.asm["cubin"])

        def dump(flag: str) -> str:
            return subprocess.run([str(TOOLS / "cuobjdump"), flag, str(cubin)],
                                  capture_output=True, text=True, check=True).stdout  # fmt: skip

        usage, sass = dump("--dump-resource-usage"), dump("--dump-sass")
    found = re.search(r"REG:(\d+) STACK:(\d+)", usage)
    assert found is not None, usage
    spills = len(re.findall(r"\b(LDL|STL)\b", sass))
    return {"tier": tier, "warps": warps, "registers": int(found[1]), "stack": int(found[2]),
            "spills": spills}  # fmt: skip


def main() -> None:
    name, batch = sys.argv[1], int(sys.argv[2])
    top_p = float(sys.argv[3]) if len(sys.argv) > 3 else 0.95
    unet = name.endswith("-unet")
    config = SaShiMiModelConfig(kernel=kernel(name.removesuffix("-unet")), unet=unet)
    model = build_sashimi(config).eval()
    sampler = fused.FusedSampler(fused.FusedSaShiMi(model), batch, backend="triton")
    # The outer tier with the nucleus (its largest variant), the inner ones as they run.
    tiers = [report(sampler, i, top_p if i == 0 else 1.0) for i in range(len(sampler.f.tiers))]
    print(json.dumps(tiers))


if __name__ == "__main__":
    main()
