"""The chunked Cauchy path stays within its memory bound at the paper's longest length."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, resource, torch
from ssm_kernels import S4Config, build_kernel
kernel = build_kernel(S4Config(d_state=64), d_model=64, l_max=128_000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.no_grad():
    k, _ = kernel(128_000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"shape": list(k.shape), "finite": bool(torch.isfinite(k).all()),
                  "peak_kib": after, "before_kib": before}))
"""


def test_s4_kernel_at_l_128000_n_64_h_64_peaks_under_4_gib() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report["shape"] == [1, 64, 128_000]
    assert report["finite"]
    assert report["peak_kib"] < 4 * 1024**2, report  # ru_maxrss is in KiB on Linux
