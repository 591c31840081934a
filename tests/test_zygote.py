"""The grading's zygote (autograder/grading/zygote.py): what it forks behaves as a process, and a zygote that
is gone never costs a grading more than its speed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from autograder.grading import sandbox, zygote

root_only = pytest.mark.skipif(not sandbox.isolating(), reason="the zygote serves a root grader only")


def started(tmp_path, modules=("json",)) -> tuple[zygote.Zygote, str]:
    python = sandbox.resolve_folders(sys.executable)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0", "HOME": str(tmp_path)}
    return zygote.Zygote(python, list(modules), sandbox.DROP_STEPS, env, str(tmp_path)), python


def test_a_forked_process_has_its_pipes_exit_code_and_signals(tmp_path):
    script = tmp_path / "echo.py"
    script.write_text("import os, sys\nline = sys.stdin.readline()\nprint(line.upper(), end='')\n"
                      "print(sorted(os.listdir('/proc/self/fd')), os.getcwd(), os.environ['ROLE'])\n"
                      "sys.exit(int(line))\n")
    z, python = started(tmp_path)
    try:
        env = {"ROLE": "test", "PATH": "/usr/bin:/bin"}
        child = z.spawn([python, "-I", str(script)], env, str(tmp_path), stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE)
        assert child is not None
        child.stdin.write(b"7\n")
        child.stdin.flush()
        out = child.stdout.read().decode()
        assert child.wait(timeout=30) == 7
        lines = out.splitlines()
        assert lines[0] == "7"
        assert lines[1] == f"['0', '1', '2', '3'] {tmp_path} test"  # 3: the listing's own; nothing of the zygote
        (tmp_path / "sleep.py").write_text("import time\ntime.sleep(60)\n")
        sleeper = z.spawn([python, "-I", str(tmp_path / "sleep.py")], env, str(tmp_path))
        assert sleeper is not None
        time.sleep(0.5)
        assert sleeper.poll() is None and os.getsid(sleeper.pid) == sleeper.pid  # a session of its own
        sleeper.kill()
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
    finally:
        z.close()


def test_a_killed_zygote_forks_nothing_and_its_children_still_end(tmp_path):
    (tmp_path / "sleep.py").write_text("import time\ntime.sleep(60)\n")
    z, python = started(tmp_path)
    child = z.spawn([python, "-I", str(tmp_path / "sleep.py")], {"PATH": "/usr/bin:/bin"}, str(tmp_path))
    assert child is not None and child.poll() is None
    for _ in range(100):  # until it is in a session of its own
        if os.getsid(child.pid) == child.pid:
            break
        time.sleep(0.01)
    z.close()
    assert not z.alive()
    assert z.spawn([python, "-I", str(tmp_path / "sleep.py")], {}, str(tmp_path)) is None  # the caller execs
    assert child.poll() is None  # an orphan now: its end is seen without the zygote's report
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) is not None


@root_only
def test_a_grading_whose_zygote_died_still_grades(tmp_path):
    """The zygote killed right after it started: both runners are exec'd as before, with the same results."""
    from autograder.grading.harness import grade_cases, load_cases
    from conftest import HW01, ROOT, shipped

    cases = [c for c in load_cases(ROOT / "assignments" / HW01 / "hidden_cases.py") if c.question in ("q1", "q2")]
    original = sandbox.Sandbox.preload

    def preload_then_die(self, stack, kernel=True):
        original(self, stack, kernel)
        assert self.zygote is not None
        self.zygote.close()

    try:
        sandbox.Sandbox.preload = preload_then_die
        results = grade_cases(cases, shipped(HW01), shipped(HW01), 5)
    finally:
        sandbox.Sandbox.preload = original
    assert results and all(r.passed for r in results), [r.message for r in results if not r.passed]


def test_a_zygote_with_a_thread_refuses_to_fork(tmp_path):
    """A library that starts a thread at import: the zygote forks nothing (a child would inherit that thread's
    locks, held, without the thread) and the caller is told to launch the process itself."""
    (tmp_path / "threaded.py").write_text("import threading, time\n"
                                          "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n")
    (tmp_path / "sleep.py").write_text("import time\ntime.sleep(60)\n")
    python = sandbox.resolve_folders(sys.executable)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)}
    z = zygote.Zygote(python, ["threaded"], sandbox.DROP_STEPS, env, str(tmp_path))
    try:
        assert z.spawn([python, "-I", str(tmp_path / "sleep.py")], {}, str(tmp_path)) is None
        assert not z.alive()
    finally:
        z.close()
