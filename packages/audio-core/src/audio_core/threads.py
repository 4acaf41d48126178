"""How many threads a command computes with: ``--threads`` on every long command.

torch starts as many threads as the machine has cores, whatever else runs there. On a shared
machine that is the worst choice: OpenMP threads spin waiting for each other while other
processes hold the cores (measured on a 2-core machine at load 6-13: ``generate`` 21x,
``data make`` 8x and the classifier 5-10x slower than with one thread). So ``--threads 0``
(``auto``, the default) takes the CPUs this process may use (its affinity mask and its cgroup's
CPU quota, the smaller), less what other processes are using now (the busy time of its CPUs
over a fifth of a second, from ``/proc/stat``: the load average is no measure of it, a virtual
machine can report 1.0 with every CPU idle), and one thread for work that is serial by nature
(sampling small batches one step at a time, writing clips). ``OMP_NUM_THREADS``, when set
(``torchrun`` sets 1), is honoured by ``auto``. ``--threads N`` takes exactly ``N``. The
choice is printed with its reasons.

Importing this module costs no torch.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from attrs import frozen

CGROUP = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@frozen
class CpuBudget:
    """What this process may compute with.

    Attributes:
        affinity: CPUs in its affinity mask (``os.cpu_count()`` where there is none).
        quota: its cgroup's CPU quota in CPUs (``cpu.max`` / ``cpu.cfs_quota_us``), ``None``
            when unlimited or unknown.
        busy: how many of the affinity mask's CPUs other work kept busy just now (``None``
            where it cannot be read).
    """

    affinity: int
    quota: float | None
    busy: float | None

    @property
    def usable(self) -> int:
        """CPUs this process may use: the affinity mask, capped by the quota."""
        if self.quota is None:
            return max(1, self.affinity)
        return max(1, min(self.affinity, math.ceil(self.quota - 1e-9)))


def _quota_v2(text: str) -> float | None:
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    quota, period = float(parts[0]), float(parts[1])
    return quota / period if quota > 0 and period > 0 else None


def _quota_v1(quota: str, period: str) -> float | None:
    q, p = float(quota), float(period)
    return q / p if q > 0 and p > 0 else None


def cgroup_quota(root: Path = CGROUP, proc: Path = PROC_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs, or ``None`` (unlimited, unknown).

    cgroup v2: ``cpu.max`` of the process's own group (from ``/proc/self/cgroup``) and of each
    group above it, the tightest; v1: ``cpu.cfs_quota_us / cpu.cfs_period_us``.
    """
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        lines = []
    quotas: list[float] = []
    for line in lines:
        hierarchy, _, path = line.partition("::") if "::" in line else ("", "", "")
        if hierarchy == "0":  # v2: "0::/user.slice/..."
            group = root / path.lstrip("/")
            while True:
                try:
                    quota = _quota_v2((group / "cpu.max").read_text())
                except (OSError, ValueError):
                    quota = None
                if quota is not None:
                    quotas.append(quota)
                if group == root or root not in group.parents:
                    break
                group = group.parent
    for base in (root / "cpu", root / "cpu,cpuacct"):
        try:
            quota = _quota_v1(
                (base / "cpu.cfs_quota_us").read_text(), (base / "cpu.cfs_period_us").read_text()
            )
        except (OSError, ValueError):
            continue
        if quota is not None:
            quotas.append(quota)
    return min(quotas) if quotas else None


def _cpu_times(stat: Path, cpus: set[int]) -> tuple[int, int] | None:
    """``(busy, total)`` jiffies of ``cpus`` from ``/proc/stat`` (idle and iowait are idle;
    steal, time the hypervisor gave to others, is busy)."""
    busy = total = 0
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        values = [int(v) for v in fields[:8]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        total += sum(values)
        busy += sum(values) - idle
    return (busy, total) if total else None


def busy_cpus(
    cpus: set[int], *, seconds: float = 0.2, stat: Path = Path("/proc/stat")
) -> float | None:
    """How many of ``cpus`` were busy over the next ``seconds`` (``None``: unknown)."""
    import time

    first = _cpu_times(stat, cpus)
    if first is None:
        return None
    time.sleep(seconds)
    second = _cpu_times(stat, cpus)
    if second is None or second[1] <= first[1]:
        return None
    return len(cpus) * (second[0] - first[0]) / (second[1] - first[1])


def cpu_budget() -> CpuBudget:
    """This process's :class:`CpuBudget`, read now (a fifth of a second)."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = set(range(os.cpu_count() or 1))
    return CpuBudget(affinity=len(cpus), quota=cgroup_quota(), busy=busy_cpus(cpus))


@frozen
class ThreadChoice:
    """How many threads, and why (printed as ``threads: 2 (...)``); ``auto``: chosen here
    rather than asked for (``--threads N`` or ``OMP_NUM_THREADS``)."""

    threads: int
    reason: str
    auto: bool = True

    def line(self) -> str:
        return f"threads: {self.threads} ({self.reason})"


def choose_threads(
    requested: int,
    budget: CpuBudget,
    *,
    serial: bool = False,
    environ: dict[str, str] | None = None,
) -> ThreadChoice:
    """The thread count for ``--threads requested`` (``0``: choose).

    Args:
        serial: the work gains nothing from more threads (``auto`` then takes 1).
        environ: where to look for ``OMP_NUM_THREADS`` (default ``os.environ``).
    """
    if requested > 0:
        return ThreadChoice(requested, f"--threads {requested}", auto=False)
    env = os.environ if environ is None else environ
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        return ThreadChoice(int(omp), f"OMP_NUM_THREADS={omp}", auto=False)
    usable = budget.usable
    where = f"{usable} usable CPU{'s' if usable != 1 else ''}"
    limits = [f"affinity {budget.affinity}"]
    if budget.quota is not None:
        limits.append(f"cgroup quota {budget.quota:g}")
    where += f": {', '.join(limits)}"
    if serial:
        return ThreadChoice(1, f"serial work; {where}")
    local = env.get("LOCAL_WORLD_SIZE", "").strip()
    share = int(local) if local.isdigit() and int(local) > 1 else 1
    if share > 1:  # torchrun's processes on this machine share its CPUs
        usable = max(1, usable // share)
        where += f"; 1/{share} for each of {share} local processes"
    if budget.busy is None:
        return ThreadChoice(usable, where)
    idle = (budget.affinity - budget.busy) / share
    threads = max(1, min(usable, math.floor(idle + 0.5)))
    return ThreadChoice(threads, f"{where}, {budget.busy:.1f} busy with other work")


def set_threads(
    requested: int,
    *,
    serial: bool = False,
    budget: Callable[[], CpuBudget] = cpu_budget,
) -> ThreadChoice:
    """Choose (see :func:`choose_threads`) and apply to torch. The caller prints
    :meth:`ThreadChoice.line` once its work starts (not before a setup error)."""
    import torch

    choice = choose_threads(requested, budget(), serial=serial)
    torch.set_num_threads(choice.threads)
    return choice


def announce(choice: ThreadChoice, *, quiet: bool = False, out: TextIO | None = None) -> None:
    """Print ``threads: N (why)`` on ``out`` (default stderr) unless ``quiet``."""
    if not quiet:
        print(choice.line(), file=out if out is not None else sys.stderr)


def threads_argument(value: str) -> int:
    """``argparse`` type of ``--threads``: ``auto`` or an integer >= 0 (0 is auto)."""
    import argparse

    if value == "auto":
        return 0
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a number of threads or 'auto'; got {value!r}")
    return number


THREADS_HELP = (
    "threads to compute with: a number, or auto (default: the CPUs this process may use, by "
    "affinity and cgroup quota, less those other work keeps busy; honours OMP_NUM_THREADS; "
    "printed)"
)
