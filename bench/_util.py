"""Shared helpers for the bench scripts: run a command, report wall time and peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

_PEAK = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)\n"
)


def measure(command: list[str], env: dict | None = None) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB of the largest process the command ran, exit code."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _PEAK, *command], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    peak_kib, rc = out.stdout.split()
    return seconds, int(peak_kib) / 1024, int(rc)


def _tree_rss_kib(root: int) -> int:
    """Sum of RSS over ``root`` and every process descended from it (by parent pid), in KiB."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        pid = int(name)
        parents[pid] = int(fields.get("PPid", "0").strip())
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, tree, changed = 0, {root}, True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    for pid in tree:
        total += rss.get(pid, 0)
    return total


def measure_tree(command: list[str], env: dict | None = None, interval: float = 0.02) -> tuple[float, float, int]:
    """Wall seconds, peak of the RSS summed over the command's whole process tree (MiB), exit code.

    Student processes start in sessions of their own, as other users, but
    they stay descendants of the grader, so the tree holds them.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(interval)
    return time.perf_counter() - start, peak / 1024, proc.returncode


def report(name: str, figures: dict) -> None:
    print(f"{name}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))
    print(json.dumps({"bench": name, **figures}))
