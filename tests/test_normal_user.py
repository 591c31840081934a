"""An instructor's first try (issue 24): the README's release check, run as a normal user, passes for every
homework, and the memory limits mean the same for root and for a normal user, whatever build of the
homework's libraries is installed (torch's CUDA build from PyPI holds about 135 MiB more at import than its
CPU build, which had cost hw03's reference 3 points and its notebook as a normal user)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder.grading import sandbox
from conftest import HOMEWORKS, ROOT

USER = 1234
"""The normal user of these tests (no account needs to exist: setpriv sets the ids)."""


def _private_copy() -> Path:
    """The project's tracked files in a private home of ``USER`` (0700, like a real home)."""
    home = Path(tempfile.mkdtemp(prefix="genai-hw-instructor-"))
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    checkout = home / "genai-hw"
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(home)], check=True)
    os.chmod(home, 0o700)
    return checkout


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="drops from root to a normal user")
@pytest.mark.parametrize("homework", HOMEWORKS)
def test_a_normal_user_releases_every_homework(homework):
    """`genai-hw release <hw>` as a normal user (the grader not root: student code in namespaces, the same
    limits): the reference scores 100 % and the stubs 0 through otter run."""
    checkout = _private_copy()
    try:
        env = {"HOME": str(checkout.parent), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
               "LANG": "C.UTF-8", "PYTHONPATH": str(checkout)}
        proc = subprocess.run(["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "env", "-i",
                               *[f"{k}={v}" for k, v in env.items()], sys.executable, "-m", "autograder.build.cli",
                               "release", homework], cwd=checkout, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(checkout.parent)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "reference submission scores" in log and "stubs submission scores 0/" in log, log[-2000:]


class _Box:
    isolated = users = True


def test_the_limit_is_the_same_whatever_the_libraries_hold():
    """A role's limit is max(MEMORY_MIB, baseline + ALLOWANCE_MIB), from the baseline its process reports
    before any student code runs: a heavier build of torch never eats the student's allowance, and the
    limit is larger only while the libraries load."""
    watch = sandbox.MemoryWatch.__new__(sandbox.MemoryWatch)
    watch.sandbox, watch.limits = _Box(), {"package": 300, "notebook": 400}
    watch.memory_roots = []
    watch.baseline = dict.fromkeys(sandbox.ROLES)
    watch.baseline_seen = dict.fromkeys(sandbox.ROLES)
    allowance = sandbox.ALLOWANCE_MIB["package"]
    assert watch.limit_of("package") == 300 + sandbox.STARTUP_MIB  # loading: no student code yet
    watch.set_baseline("package", 16)  # numpy only
    assert watch.limit_of("package") == 300
    watch.set_baseline("package", 145)  # torch's CPU build
    assert watch.limit_of("package") == max(300, 145 + allowance)
    watch.set_baseline("package", 280)  # torch's CUDA build
    assert watch.limit_of("package") == 280 + allowance
    message = watch.message("package")
    assert f"used more than {280 + allowance} MiB of memory" in message
    assert "held 280 MiB of it before any code of yours ran" in message
    watch.set_baseline("package", None)  # a new runner starts: the last baseline still explains
    assert watch.limit_of("package") == 300 + sandbox.STARTUP_MIB and "held 280 MiB" in watch.message("package")


HEAVY = '''"""A package whose libraries alone hold more than the package role's whole limit (MEMORY_MIB)."""
import diffusers
import gensim
import matplotlib
import numpy
import otter
import pandas
import torch


def allocate(mib):
    import time

    block = bytearray(mib * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    time.sleep(1)  # held for 20 of the watch's samples: what is freed before a sample is never seen
    return len(block) // 2**20
'''


@pytest.mark.slow
def test_libraries_heavier_than_the_limit_leave_the_student_its_allowance(tmp_path):
    """Libraries that hold more than the whole limit at import (as torch's CUDA build nearly does) are the
    baseline: the runner starts, an allocation within the allowance passes, one past it is stopped with a
    message that names the limit and the baseline."""
    from autograder.grading.cases import Case, call
    from autograder.grading.harness import grade_cases

    package = tmp_path / "genai_hw"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "heavy.py").write_text(HEAVY)
    allowance = sandbox.ALLOWANCE_MIB["package"]
    cases = [Case("q1", f"allocate_{mib}", 1, "heavy.allocate", lambda rng, mib=mib: [call(mib)],
                  f"allocate {mib} MiB", timeout=60) for mib in (allowance - 60, allowance + 60)]
    within, past = grade_cases(cases, package, package, 0)
    assert within.passed, within.message
    assert not past.passed and "used more than" in past.message, past.message
    held = int(past.message.split(" libraries held ")[1].split()[0])
    assert held > sandbox.MEMORY_MIB["package"], past.message  # the stack alone is past the plain limit
    assert f"used more than {held + allowance} MiB of memory" in past.message, past.message
