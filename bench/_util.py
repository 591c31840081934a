"""Shared helpers for the bench scripts: run a command, report wall time and peak memory."""

from __future__ import annotations

import json
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


def report(name: str, figures: dict) -> None:
    print(f"{name}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))
    print(json.dumps({"bench": name, **figures}))
