"""genai_hw.utils gives torch the CPUs a notebook may use: its affinity, capped by its container's CPU quota,
unless the student (or the grader, through OMP_NUM_THREADS) chose a number first."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, SOLUTIONS

PROBE = """
import json, sys
{before}
import torch
{after}
from genai_hw import utils
utils.default_device()
print(json.dumps({{"available": utils.available_cpus(), "threads": torch.get_num_threads()}}))
"""


def probe(before: str = "", after: str = "", env: dict | None = None, preexec=None) -> dict:
    import json

    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    environment.update(env or {})
    done = subprocess.run([sys.executable, "-c", PROBE.format(before=before, after=after)], cwd=SOLUTIONS.parent,
                          capture_output=True, text=True, env=environment, preexec_fn=preexec, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpus() -> int:
    return len(os.sched_getaffinity(0))


def test_without_quota_or_affinity_torch_keeps_one_thread_per_cpu():
    assert probe() == {"available": cpus(), "threads": cpus()}


def test_one_cpu_of_affinity_gives_one_thread():
    got = probe(preexec=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
    assert got == {"available": 1, "threads": 1}


@pytest.fixture
def half_a_cpu():
    """A cgroup v1 cpu group with Gradescope's quota (half a CPU), when this machine lets us make one."""
    root = Path("/sys/fs/cgroup/cpu")
    group = root / f"genai-hw-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
        (group / "cpu.cfs_quota_us").write_text(str(int((group / "cpu.cfs_period_us").read_text()) // 2))
    except OSError as error:
        if group.exists():
            group.rmdir()
        pytest.skip(f"cannot make a cgroup v1 cpu group with a quota here: {error}")
    yield group
    group.rmdir()  # the probe has exited, so the group is empty


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to tell a quota from the affinity")
def test_a_cpu_quota_caps_the_threads(half_a_cpu):
    got = probe(preexec=lambda: (half_a_cpu / "cgroup.procs").write_text(str(os.getpid())))
    assert got == {"available": 1, "threads": 1}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to tell a quota from the affinity")
def test_a_students_own_choice_is_kept(half_a_cpu):
    # torch.set_num_threads before genai_hw.utils: kept, although two CPUs are free (a number equal to torch's
    # default cannot be told from the default, and is then fitted like it)
    assert probe(after="torch.set_num_threads(1)") == {"available": 2, "threads": 1}
    # OMP_NUM_THREADS (the grader sets it to 1): kept, although the quota allows one thread only
    enter = lambda: (half_a_cpu / "cgroup.procs").write_text(str(os.getpid()))  # noqa: E731
    assert probe(env={"OMP_NUM_THREADS": "2"}, preexec=enter) == {"available": 1, "threads": 2}


def test_cgroup_v2_quota_files_are_read(tmp_path):
    from importlib import util

    spec = util.spec_from_file_location("utils_under_test", SOLUTIONS / "utils.py")
    utils = util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert utils._read_quota(tmp_path, "cpu.max", None) == 0.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert utils._read_quota(tmp_path, "cpu.max", None) is None
    (tmp_path / "cpu.cfs_quota_us").write_text("250000\n")
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")
    assert utils._read_quota(tmp_path, "cpu.cfs_quota_us", "cpu.cfs_period_us") == 2.5


BLAS_PROBE = """
import ctypes, json
import numpy as np
from autograder.grading.harness import OPENBLAS_SET_THREADS, single_blas_thread

path = next(line.split(None, 5)[-1].strip() for line in open("/proc/self/maps") if "openblas" in line.lower())
library = ctypes.CDLL(path)
getter = next(getattr(library, name.replace("set", "get")) for name in OPENBLAS_SET_THREADS
              if hasattr(library, name.replace("set", "get")))
before = getter()
done = single_blas_thread()
matrix = np.arange(600.0).reshape(200, 3)
print(json.dumps({"before": before, "done": done, "after": getter(),
                  "right": bool(np.allclose(matrix @ np.ones(3), matrix.sum(axis=1)))}))
"""


@pytest.mark.skipif(cpus() < 2, reason="one CPU: OpenBLAS starts no second thread")
def test_the_graders_own_numpy_computes_on_one_thread():
    import json

    environment = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", BLAS_PROBE], cwd=ROOT, capture_output=True, text=True,
                          env=environment, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures == {"before": min(cpus(), 64), "done": True, "after": 1, "right": True}
