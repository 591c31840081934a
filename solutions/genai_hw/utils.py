"""Small helpers shared by every homework: seeding, device choice, CPU threads, cheap mode.

These are not exercises: students and graders use them as they are.
"""

from __future__ import annotations

import math
import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

GRADING_ENV_VAR = "GENAI_HW_GRADING"
"""Set to "1" by the autograder while it runs a submitted notebook."""


def grading_mode() -> bool:
    """Return True while the autograder runs the notebook.

    Notebook cells that train models or sweep parameters use this to run a
    small, fast version of themselves: the points come from the package
    functions, so grading never has to wait for a long training cell.
    """
    return os.environ.get(GRADING_ENV_VAR, "") == "1"


def available_cpus() -> int:
    """How many CPUs this process may keep busy: the CPUs it may run on (its affinity), capped by the CPU
    quota of its container (the cgroup's ``cpu.max``, or ``cpu.cfs_quota_us`` with cgroup v1), at least 1.

    Example: a JupyterHub server on a 64-core machine with a quota of 2 CPUs gives 2; a container with half
    a CPU, as on Gradescope, gives 1.
    """
    cpus = _cpus_seen()
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cpus_seen() -> int:
    """The CPUs this process may run on (its affinity): what torch's default number of threads follows."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cgroup_cpu_quota() -> float | None:
    """The smallest CPU quota (in CPUs) on the way from this process's cgroup to the root, if any."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: cpu.max is "max 100000" or "50000 100000"
            files, root = [("cpu.max", None)], Path("/sys/fs/cgroup")
        elif "cpu" in controllers.split(","):  # cgroup v1
            files = [("cpu.cfs_quota_us", "cpu.cfs_period_us")]
            root = next((p for p in (Path("/sys/fs/cgroup") / c for c in ("cpu,cpuacct", "cpu", "cpuacct,cpu"))
                         if p.is_dir()), None)
            if root is None:
                continue
        else:
            continue
        folder = root / path.lstrip("/")
        while True:
            quotas.extend(q for q in (_read_quota(folder, *f) for f in files) if q is not None)
            if folder == root or root not in folder.parents:
                break
            folder = folder.parent
    return min(quotas) if quotas else None


def _read_quota(folder: Path, name: str, period_name: str | None) -> float | None:
    try:
        if period_name is None:
            quota, _, period = (folder / name).read_text().strip().partition(" ")
        else:
            quota, period = (folder / name).read_text().strip(), (folder / period_name).read_text().strip()
        if quota in ("max", "-1") or int(period) <= 0:
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        return None


_threads_fitted = False


def fit_torch_threads() -> int | None:
    """Give PyTorch as many threads as :func:`available_cpus` says this process may use, and return that
    number; leave them alone (and return None) when they were set already: ``OMP_NUM_THREADS`` in the
    environment, or ``torch.set_num_threads`` called before with a number other than torch's default.

    PyTorch starts one thread per CPU it sees, which on a shared server or a container with a CPU quota
    can be many more than it may use: the threads then wait for each other and small training loops run
    many times slower. Every notebook calls this through :func:`default_device`, :func:`seed_everything`
    and :func:`by_device`; call ``torch.set_num_threads(n)`` yourself first to choose another number.
    """
    global _threads_fitted
    if _threads_fitted or os.environ.get("OMP_NUM_THREADS"):
        return None
    try:
        import torch
    except ImportError:
        return None
    _threads_fitted = True
    if torch.get_num_threads() != _cpus_seen():  # not torch's default: somebody chose
        return None
    threads = available_cpus()
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (when installed) PyTorch; return a NumPy Generator.

    Example: ``rng = seed_everything(0); rng.random()`` gives the same number
    on every run. Prefer passing the returned ``rng`` explicitly to functions
    over relying on global state.
    """
    random.seed(seed)
    np.random.seed(seed)
    fit_torch_threads()
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def default_device() -> Any:
    """The torch device to use: CUDA when a GPU is visible, else the CPU.

    Code in this package takes tensors where they are and never hard-codes
    "cuda"; notebooks call this once to decide where to put new tensors.
    """
    import torch

    fit_torch_threads()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def by_device(cpu: Any, gpu: Any, grading: Any = None) -> Any:
    """How big a training cell should be here: ``gpu`` when a CUDA device is visible, else ``cpu``; under the
    autograder (:func:`grading_mode`) ``grading`` when given (else ``cpu``).

    Example: ``steps = by_device(cpu=2_000, gpu=20_000, grading=50)`` trains longer by itself on a GPU,
    and the grader, which skips or cheapens training cells, waits for 50 steps at most. Never imports
    torch when it is not installed.
    """
    if grading_mode():
        return cpu if grading is None else grading
    try:
        import torch
    except ImportError:
        return cpu
    fit_torch_threads()
    return gpu if torch.cuda.is_available() else cpu


if "torch" in sys.modules:  # the notebook imported torch first: fit its threads now
    fit_torch_threads()
