"""One import of the homework's libraries for a grading's three Pythons: a preloaded process that forks them.

A grading runs Python three times: the reference's runner, the student's
runner and the notebook's kernel, and each imported torch (or gensim) and,
for the kernel, ipykernel on its own: 1.5 to 2.3 s of CPU each, most of a
grading's CPU time beyond a trivial Otter grading's (issue 22). On half a CPU,
as Gradescope gives, CPU seconds are wall seconds twice over.

:class:`Zygote` starts one Python (as the grader's user, with the environment
every role's Python gets: no thread pools, hash seed 0, isolated mode) that
imports the homework's libraries and ipykernel once, then waits. The grader
asks it for each process (:meth:`Zygote.spawn`); it forks, and the child
becomes what the exec'd process would have been: its own session, the
standard streams it is handed (over a Unix socket, ``SCM_RIGHTS``), no other
descriptor of the zygote, the role's folder and whole environment, and for a
student role the sandbox's launch steps (:data:`sandbox.DROP_STEPS`: limits,
OOM score, the role's user, no new privileges, the seccomp filter), run by
the same code in the child before any student code. It then runs the runner
script or ``ipykernel_launcher`` as ``__main__``.

What differs from an exec'd process, and why it is safe:

- the child's memory starts as the zygote's: the libraries, and the requests
  the zygote received before (paths, environments and argument lists of the
  grading's processes: nothing secret; no key, case or result ever passes
  through the zygote);
- it forks only while it has one thread (a library that started a thread at import makes it refuse, and
  the grader exec the process as before: a fork copies no other thread, and none of the locks they hold);
- ``/proc/PID/environ`` and ``cmdline`` show the zygote's (a fixed minimal
  environment), not the role's: in users mode, the only mode that uses a
  zygote, the grader finds a role's processes by user, not by marker;
- after dropping from root to the role's user the child is not dumpable (the
  kernel's rule for a process that changed its user without exec): its
  ``/proc`` files belong to root, stricter than an exec'd process.

Used only where student code runs as users of its own (the grader is root:
Gradescope), never where a GPU is visible (CUDA cannot be used in a child
forked after its libraries loaded in the parent: torch does not touch CUDA at
import, but the saving is not worth the doubt on machines that have CPU to
spare) and not when ``GENAI_HW_ZYGOTE=0``. Whatever goes wrong with it (it
cannot start, dies, refuses), the grader launches the process as before.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from typing import Any

KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell")
"""What the notebook's kernel imports before its start-up files run, beyond the homework's libraries."""

ENV = "GENAI_HW_ZYGOTE"
"""``0`` turns the zygote off (every process is exec'd)."""

MESSAGE_BYTES = 1 << 20
"""The largest request or report on the zygote's socket."""

SPAWN_TIMEOUT = 60.0
"""Seconds to wait for the zygote's answer to a spawn (its libraries load first): past it, exec as before."""

SOURCE = r'''# genai_hw_zygote (autograder/grading/zygote.py)
import array, importlib, json, os, select, socket, sys

if sys.path and sys.path[0] == "":  # as under -I: no folder of the caller's on the path
    del sys.path[0]
_control = socket.socket(fileno=int(sys.argv[1]))
_hello = json.loads(_control.recv(1 << 20))


def _load(names):
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:
            pass


_load(_hello["stack"])


def _reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _control.send(json.dumps({"exited": pid, "status": os.waitstatus_to_exitcode(status)}).encode())


def _serve():
    """Fork a child per request; return only in a child (its request and descriptors)."""
    _control.send(b'{"ready": true}')
    while True:
        readable, _, _ = select.select([_control], [], [], 0.05)
        _reap()
        if not readable:
            continue
        fds = array.array("i")
        data, ancillary, _, _ = _control.recvmsg(1 << 20, socket.CMSG_SPACE(16 * fds.itemsize))
        if not data:
            os._exit(0)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        request = json.loads(data)
        if "load" in request:  # more libraries, before the next fork
            _load(request["load"])
            continue
        if len(os.listdir("/proc/self/task")) > 1:  # a library started a thread: a fork could copy its locks held
            for fd in fds:
                os.close(fd)
            _control.send(b'{"refused": "the zygote has threads"}')
            continue
        pid = os.fork()
        if pid == 0:
            return request, list(fds)
        for fd in fds:
            os.close(fd)
        try:
            pidfd = [os.pidfd_open(pid)]
        except (AttributeError, OSError):
            pidfd = []
        _control.sendmsg([json.dumps({"spawned": pid}).encode()],
                         [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", pidfd))] if pidfd else [])
        for fd in pidfd:
            os.close(fd)


_request, _fds = _serve()
_control.detach()  # closed below with every other descriptor of the zygote's
os.setsid()
for _fd, _target in zip(_fds, (0, 1, 2)):
    os.dup2(_fd, _target)
os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)
os.chdir(_request["cwd"])
os.environ.clear()
os.environ.update(_request["env"])
if "tempfile" in sys.modules:
    sys.modules["tempfile"].tempdir = None
if _request.get("drop") is not None:
    sys.argv = ["-c", *(str(a) for a in _request["drop"])]
    exec(compile(_hello["drop"], "<genai-hw launch>", "exec"), {"__name__": "__genai_hw_launch__"})
del _control, _hello, _request["env"]
sys.argv = list(_request["argv"])
import runpy
if _request["run"] == "module":
    sys.path.insert(0, os.getcwd())
    runpy.run_module(_request["target"], run_name="__main__", alter_sys=True)
else:
    runpy.run_path(_request["target"], run_name="__main__")
'''
"""The zygote's program (``python -s -c SOURCE FD``): the standard library only, like the launchers.

Not ``-I``: every child shares the zygote's interpreter flags and hash seed, and the notebook's kernel
runs as ``python -m ipykernel_launcher`` (hash seed 0 from ``PYTHONHASHSEED``, its folder on the path, which
IPython leaves out under ``-I``'s safe path). The zygote's environment is the grader's own making, and its
path is what ``-I`` gives (no user site, no current folder); a runner child keeps it, the kernel child gets
its folder first, as ``-m`` would."""


def enabled() -> bool:
    """Whether gradings may preload a zygote (not turned off by ``GENAI_HW_ZYGOTE=0``)."""
    return os.environ.get(ENV, "1") != "0"


class Forked:
    """A child of the zygote, as much of ``subprocess.Popen`` as the grader and Jupyter use: ``pid``, the
    pipes it was given (``stdin``, ``stdout``, ``stderr``: file objects or None), ``poll``, ``wait``,
    ``send_signal``, ``terminate``, ``kill`` and ``returncode``. The zygote reaps it and reports its exit
    code; where that report never comes (the zygote was killed), the child's end is seen through a pidfd and
    its code is unknown (-9)."""

    def __init__(self, zygote: Zygote, pid: int, pidfd: int | None, stdin: Any, stdout: Any, stderr: Any) -> None:
        self.zygote, self.pid, self.pidfd = zygote, pid, pidfd
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None
        self.args = ["<forked by the genai-hw zygote>"]

    def poll(self) -> int | None:
        if self.returncode is None:
            code = self.zygote.exit_code(self.pid)
            if code is not None:
                self.returncode = code
            elif not self._alive():
                self.returncode = self.zygote.exit_code(self.pid, wait=0.2)
                if self.returncode is None:
                    self.returncode = -signal.SIGKILL
        return self.returncode

    def _alive(self) -> bool:
        if self.pidfd is not None:
            return not select.select([self.pidfd], [], [], 0)[0]
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return self.zygote.alive()

    def wait(self, timeout: float | None = None) -> int:
        until = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if until is not None and time.monotonic() >= until:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None


class Zygote:
    """The grader's side of one grading's zygote (see the module's text)."""

    def __init__(self, python: str, stack: list[str], drop: str, env: dict[str, str], cwd: str) -> None:
        self._ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([python, "-s", "-c", SOURCE, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, cwd=cwd, env=env, start_new_session=True)
        finally:
            theirs.close()
        self._lock = threading.Lock()  # one spawn at a time
        self._exits: dict[int, int] = {}
        self._answers: list[tuple[dict, list[int]]] = []
        self._changed = threading.Condition()
        self._ready = False
        self._gone = False
        self._ours.sendall(json.dumps({"stack": list(stack), "drop": drop}).encode())
        threading.Thread(target=self._read, name="genai-hw-zygote", daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                fds = array.array("i")
                data, ancillary, _, _ = self._ours.recvmsg(MESSAGE_BYTES, socket.CMSG_SPACE(4 * fds.itemsize))
                if not data:
                    break
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                message = json.loads(data)
                with self._changed:
                    if "exited" in message:
                        self._exits[int(message["exited"])] = int(message["status"])
                    elif message.get("ready"):
                        self._ready = True
                    else:
                        # A pid the kernel gave again: the exit reported before is an earlier child's.
                        self._exits.pop(int(message.get("spawned", -1)), None)
                        self._answers.append((message, list(fds)))
                    self._changed.notify_all()
        except (OSError, ValueError, TypeError, KeyError):
            pass
        finally:
            with self._changed:
                self._gone = True
                self._changed.notify_all()

    def alive(self) -> bool:
        return not self._gone and self.proc.poll() is None

    def exit_code(self, pid: int, wait: float = 0.0) -> int | None:
        with self._changed:
            if pid not in self._exits and wait > 0:
                self._changed.wait_for(lambda: pid in self._exits or self._gone, wait)
            return self._exits.get(pid)

    def load(self, modules: list[str]) -> None:
        """Have the zygote import ``modules`` too, before its next fork (a homework's libraries that its
        package imports inside functions, such as gensim)."""
        if self.alive() and modules:
            with self._lock, contextlib.suppress(OSError):
                self._ours.sendall(json.dumps({"load": list(modules)}).encode())

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str, drop: list[int] | None = None,
              stdin: Any = None, stdout: Any = None, stderr: Any = None, module: bool = False) -> Forked | None:
        """Fork the process ``argv`` (``[python, -I, script, ...]`` or ``[python, -m, module, ...]``) would
        have been; None where the zygote cannot (the caller then execs it). ``stdin``/``stdout``/``stderr``:
        ``subprocess.PIPE``, ``subprocess.DEVNULL`` or None (also /dev/null: nothing of the grader's)."""
        if not self.alive():
            return None
        streams, ends, kept = [], [], []
        try:
            for number, how in enumerate((stdin, stdout, stderr)):
                if how == subprocess.PIPE:
                    read, write = os.pipe()
                    theirs, ours = (read, write) if number == 0 else (write, read)
                    ends.append(theirs)
                    kept.append(ours)
                    streams.append(os.fdopen(ours, "wb" if number == 0 else "rb"))
                else:
                    ends.append(os.open(os.devnull, os.O_RDWR))
                    streams.append(None)
            if module:
                target, args = argv[2], [argv[0], *argv[3:]]
            else:
                script = next(i for i, a in enumerate(argv[1:], 1) if not a.startswith("-"))
                target, args = argv[script], argv[script:]
            request = {"argv": args, "target": target, "run": "module" if module else "path", "env": env,
                       "cwd": cwd, "drop": drop}
            with self._lock:
                self._ours.sendmsg([json.dumps(request).encode()],
                                   [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", ends))])
                with self._changed:
                    got = self._changed.wait_for(lambda: self._answers or self._gone, SPAWN_TIMEOUT)
                    if not got or not self._answers:
                        raise OSError("the zygote did not answer")
                    answer, fds = self._answers.pop(0)
            pid = int(answer["spawned"])
        except (OSError, ValueError, KeyError, StopIteration):
            for stream in streams:
                if stream is not None:
                    stream.close()
            self.close()
            return None
        finally:
            for fd in ends:
                with contextlib.suppress(OSError):
                    os.close(fd)
        return Forked(self, pid, fds[0] if fds else None, *streams)

    def close(self) -> None:
        """Kill the zygote (its children live on: the sandbox ends them)."""
        self._gone = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.proc.pid, signal.SIGKILL)  # not its group: a child that has not yet left it lives on
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        with contextlib.suppress(OSError):
            self._ours.close()
