"""--threads: what the process may use (affinity, cgroup quota, load) and the choice made."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audio_core.threads import CpuBudget, cgroup_quota, choose_threads, threads_argument

budgets = st.builds(
    CpuBudget,
    affinity=st.integers(1, 256),
    quota=st.none() | st.floats(0.1, 300),
    busy=st.none() | st.floats(0, 256),
)


@given(budgets)
def test_auto_stays_within_what_the_process_may_use(budget: CpuBudget) -> None:
    choice = choose_threads(0, budget, environ={})
    assert 1 <= choice.threads <= budget.usable <= budget.affinity
    if budget.quota is not None:
        assert budget.usable <= max(1, -(-budget.quota // 1))
    assert choose_threads(0, budget, serial=True, environ={}).threads == 1
    assert choose_threads(3, budget, environ={"OMP_NUM_THREADS": "5"}).threads == 3
    assert choose_threads(0, budget, environ={"OMP_NUM_THREADS": "5"}).threads == 5


@pytest.mark.parametrize(
    ("budget", "threads", "reason"),
    [
        (CpuBudget(2, None, 0.2), 2, "2 usable CPUs: affinity 2, 0.2 busy with other work"),
        (CpuBudget(2, None, 1.9), 1, "2 usable CPUs: affinity 2, 1.9 busy with other work"),
        (
            CpuBudget(16, 4.0, 10.0),
            4,
            "4 usable CPUs: affinity 16, cgroup quota 4, 10.0 busy with other work",
        ),  # the quota binds before the others do
        (CpuBudget(8, 1.5, None), 2, "2 usable CPUs: affinity 8, cgroup quota 1.5"),
        (CpuBudget(4, None, 1.6), 2, "4 usable CPUs: affinity 4, 1.6 busy with other work"),
    ],
)
def test_auto_leaves_the_cpus_others_are_using(
    budget: CpuBudget, threads: int, reason: str
) -> None:
    choice = choose_threads(0, budget, environ={})
    assert (choice.threads, choice.reason) == (threads, reason)
    assert choice.line() == f"threads: {threads} ({reason})"


def cgroup_tree(tmp_path: Path, files: dict[str, str], own: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(own)
    return root, proc


def test_the_tightest_v2_quota_above_the_process_counts(tmp_path: Path) -> None:
    root, proc = cgroup_tree(
        tmp_path,
        {
            "cpu.max": "max 100000\n",
            "box/cpu.max": "150000 100000\n",  # 1.5 CPUs for the container
            "box/job/cpu.max": "max 100000\n",
        },
        "0::/box/job\n",
    )
    assert cgroup_quota(root, proc) == 1.5
    root, proc = cgroup_tree(tmp_path / "open", {"cpu.max": "max 100000\n"}, "0::/\n")
    assert cgroup_quota(root, proc) is None


def test_a_v1_quota_and_unreadable_files(tmp_path: Path) -> None:
    root, proc = cgroup_tree(
        tmp_path,
        {"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"},
        "4:cpu,cpuacct:/\n",
    )
    assert cgroup_quota(root, proc) == 2.0
    root, proc = cgroup_tree(
        tmp_path / "unlimited",
        {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n", "cpu.max": "junk"},
        "0::/\n",
    )
    assert cgroup_quota(root, proc) is None
    assert cgroup_quota(tmp_path / "none", tmp_path / "no-such-file") is None


@pytest.mark.parametrize(("text", "value"), [("auto", 0), ("0", 0), ("3", 3)])
def test_the_flag_takes_a_count_or_auto(text: str, value: int) -> None:
    assert threads_argument(text) == value


@pytest.mark.parametrize("text", ["-1", "two", "1.5"])
def test_a_bad_thread_count_is_named(text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="expected a number of threads or 'auto'"):
        threads_argument(text)


def test_busy_cpus_are_read_from_proc_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two readings of /proc/stat: CPU 0 fully busy between them, CPU 1 idle, CPU 2 not ours."""
    from audio_core import threads

    stat = tmp_path / "stat"
    lines = [
        "cpu  0 0 0 0 0 0 0 0 0 0",
        "cpu0 100 0 0 100 0 0 0 0 0 0",
        "cpu1 0 0 0 200 0 0 0 0 0 0",
        "cpu2 0 0 0 200 0 0 0 0 0 0",
    ]
    stat.write_text("\n".join(lines) + "\n")
    first = threads._cpu_times(stat, {0, 1})
    assert first == (100, 400)
    later = [
        "cpu0 150 0 0 100 0 0 0 0 0 0",  # 50 busy jiffies
        "cpu1 0 0 0 250 0 0 0 0 0 0",  # 50 idle
        "cpu2 0 0 0 250 0 0 0 0 0 0",
    ]

    def sleep(_: float) -> None:
        stat.write_text("\n".join(later) + "\n")

    monkeypatch.setattr("time.sleep", sleep)
    assert threads.busy_cpus({0, 1}, stat=stat) == 1.0
    assert threads.busy_cpus({0}, stat=tmp_path / "missing") is None


def test_the_choice_is_applied_and_printed_only_when_asked() -> None:
    import io

    import torch

    from audio_core.threads import announce, set_threads

    before = torch.get_num_threads()
    try:
        choice = set_threads(1, budget=lambda: CpuBudget(affinity=4, quota=None, busy=None))
        assert torch.get_num_threads() == 1
        out = io.StringIO()
        announce(choice, quiet=True, out=out)
        assert out.getvalue() == ""
        announce(choice, out=out)
        assert out.getvalue() == "threads: 1 (--threads 1)\n"
    finally:
        torch.set_num_threads(before)


def test_torchrun_processes_share_the_machine_and_asked_counts_are_not_auto() -> None:
    idle = CpuBudget(affinity=8, quota=None, busy=0.0)
    alone = choose_threads(0, idle, environ={})
    assert (alone.threads, alone.auto) == (8, True)
    shared = choose_threads(0, idle, environ={"LOCAL_WORLD_SIZE": "4"})
    assert shared.threads == 2
    assert "1/4 for each of 4 local processes" in shared.reason
    busy = choose_threads(
        0, CpuBudget(affinity=8, quota=None, busy=4.0), environ={"LOCAL_WORLD_SIZE": "2"}
    )
    assert busy.threads == 2
    assert not choose_threads(3, idle, environ={}).auto
    assert not choose_threads(0, idle, environ={"OMP_NUM_THREADS": "2"}).auto
