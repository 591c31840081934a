"""Shared helpers for the bench scripts: run a command, report wall time and peak memory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_PEAK = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)\n"
)


def shipped_reference(root: Path, homework, dest: Path) -> Path:
    """The reference as a student's upload of ``homework`` carries it (``dest/genai_hw``): its modules, the
    shared helpers, its given modules and its data, what its release ships. Uploading the whole
    ``solutions/genai_hw`` instead makes the runner import every homework's modules (torch for homework 1
    and 2) and zips 18 MB of other homeworks' data: a grading no student's upload gets."""
    from autograder.build.release import copy_package, release_contents

    return copy_package(root / "solutions" / "genai_hw", dest / "genai_hw", release_contents(root, homework))


def measure(command: list[str], env: dict | None = None) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB of the largest process the command ran, exit code."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _PEAK, *command], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    peak_kib, rc = out.stdout.split()
    return seconds, int(peak_kib) / 1024, int(rc)


def _tree_rss_kib(root: int) -> int:
    """Sum of RSS over ``root`` and every process descended from it (by parent pid), in KiB."""
    total = 0
    for pid in _tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total


def measure_tree(command: list[str], env: dict | None = None, interval: float = 0.02,
                 wrap=None) -> tuple[float, float, int]:
    """Wall seconds, peak of the RSS summed over the command's whole process tree (MiB), exit code.

    Student processes start in sessions of their own, as other users, but
    they stay descendants of the grader, so the tree holds them. ``wrap``
    (``MemoryCgroup.wrap``) runs the command inside a cgroup.
    """
    figures = measure_grading(command, env=env, interval=interval, wrap=wrap, pss=False)
    return figures["seconds"], figures["rss_mib"], figures["rc"]


def _tree_pids(root: int) -> list[int]:
    """``root`` and every process descended from it (by parent pid)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                parents[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, changed = {root}, True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return sorted(tree)


def _rollup_kib(pid: int) -> tuple[int, int]:
    """RSS and PSS of ``pid`` in KiB (0, 0 once it is gone)."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def measure_grading(command: list[str], env: dict | None = None, interval: float = 0.05,
                    wrap=None, pss: bool = True) -> dict:
    """Run ``command`` and sample its whole process tree every ``interval`` seconds.

    Returns ``seconds`` (wall, from the launch), ``started`` (the launch's Unix time), ``rss_mib`` and
    ``pss_mib`` (peaks of the tree's summed RSS and of its summed proportional set size: a library page
    that several processes share counts once in PSS, once per process in RSS) and ``rc``. Without ``pss``
    only RSS is read (``/proc/PID/status``, cheaper than ``smaps_rollup``) and ``pss_mib`` is 0.
    """
    started_unix = time.time()
    start = time.perf_counter()
    proc = subprocess.Popen(wrap(command) if wrap else command, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    rss_peak = pss_peak = 0
    while proc.poll() is None:
        if pss:
            rollups = [_rollup_kib(pid) for pid in _tree_pids(proc.pid)]
            rss_now, pss_now = sum(r for r, _ in rollups), sum(p for _, p in rollups)
        else:
            rss_now, pss_now = _tree_rss_kib(proc.pid), 0
        rss_peak, pss_peak = max(rss_peak, rss_now), max(pss_peak, pss_now)
        time.sleep(interval)
    return {"seconds": time.perf_counter() - start, "started": started_unix, "rss_mib": rss_peak / 1024,
            "pss_mib": pss_peak / 1024, "rc": proc.returncode}


def cpu_seconds(command: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, every process of the command that was waited for)."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return time.perf_counter() - start, cpu


def report(name: str, figures: dict) -> None:
    print(f"{name}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))
    print(json.dumps({"bench": name, **figures}))


class _Cgroup:
    """A cgroup under this process's own in ``CONTROLLER``'s hierarchy (root, and a writable cgroup v1
    hierarchy or cgroup v2 with that controller; else ``available()`` is False). ``wrap(command)`` runs a
    command inside it; ``remove()`` kills what is left in it and removes it."""

    CONTROLLER = ""
    PREFIX = "genai-hw-bench"

    def __init__(self) -> None:
        self.path: Path | None = None
        self.v2 = False
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            _, controllers, own = line.split(":", 2)
            if self.CONTROLLER in controllers.split(","):
                parent = Path("/sys/fs/cgroup") / self.CONTROLLER / own.lstrip("/")
            elif controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").exists():
                parent, self.v2 = Path("/sys/fs/cgroup") / own.lstrip("/"), True
            else:
                continue
            if os.geteuid() == 0 and os.access(parent, os.W_OK):
                self.path = parent / f"{self.PREFIX}-{os.getpid()}-{time.monotonic_ns()}"
            return

    def settings(self) -> dict[str, str]:
        """The files to write in the new cgroup (by name) and their values."""
        raise NotImplementedError

    def available(self) -> bool:
        if self.path is None:
            return False
        try:
            self.path.mkdir()
            for name, value in self.settings().items():
                (self.path / name).write_text(value)
        except OSError:
            self.remove()
            self.path = None
            return False
        return True

    def wrap(self, command: list[str]) -> list[str]:
        return ["sh", "-c", f'echo $$ > "{self.path}/cgroup.procs" && exec "$@"', "sh", *command]

    def remove(self) -> None:
        if self.path is None or not self.path.exists():
            return
        for _ in range(50):
            with contextlib.suppress(OSError):
                for pid in (self.path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


class MemoryCgroup(_Cgroup):
    """A memory cgroup of ``limit_mib``, like a container's memory limit, without swap. ``peak_mib()`` and
    ``oom_kills()`` read its counters."""

    CONTROLLER = "memory"

    def __init__(self, limit_mib: int) -> None:
        self.limit_mib = limit_mib
        super().__init__()

    def settings(self) -> dict[str, str]:
        limit = str(self.limit_mib * 2**20)
        if self.v2:
            return {"memory.max": limit, "memory.swap.max": "0"}
        return {"memory.limit_in_bytes": limit, "memory.swappiness": "0"}

    def peak_mib(self) -> float | None:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        try:
            return int((self.path / name).read_text()) / 2**20
        except (OSError, ValueError):
            return None

    def anon_mib(self) -> float | None:
        """The processes' own memory in the cgroup now (anonymous pages: no page cache), MiB."""
        key = "anon" if self.v2 else "rss"
        try:
            for line in (self.path / "memory.stat").read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value) / 2**20
        except (OSError, ValueError):
            pass
        return None

    def oom_kills(self) -> int:
        name = "memory.events" if self.v2 else "memory.oom_control"
        for line in (self.path / name).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0


class CpuCgroup(_Cgroup):
    """A CPU quota of ``cpus`` CPUs (``cpus=0.5``: 50 ms of CPU time every 100 ms, Gradescope's half CPU)."""

    CONTROLLER = "cpu"
    PREFIX = "genai-hw-bench-cpu"
    PERIOD_US = 100_000

    def __init__(self, cpus: float) -> None:
        self.cpus = cpus
        super().__init__()

    def settings(self) -> dict[str, str]:
        quota = int(self.cpus * self.PERIOD_US)
        if self.v2:
            return {"cpu.max": f"{quota} {self.PERIOD_US}"}
        return {"cpu.cfs_period_us": str(self.PERIOD_US), "cpu.cfs_quota_us": str(quota)}
