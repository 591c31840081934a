"""Student code in Linux namespaces of its own, for a grader that is not root (an instructor's laptop).

Root gives each grading unprivileged users of its own (:mod:`autograder.grading.sandbox`). A normal user has no
other user id to give, so each student process is started by :data:`LAUNCH` in new *user, PID, mount,
network, IPC and UTS namespaces* (what ``unshare`` and bubblewrap use, open to any user where the kernel
allows unprivileged user namespaces). Inside, it sees a file system of its own, built from a read-only
skeleton:

- read-only: ``/usr``, ``/etc``, ``/bin``/``/lib`` (or their links), ``/sys``, the grading Python and its
  environment (``sys.prefix`` and ``sys.base_prefix``, wherever they are), and what the grader shares with
  the role (the package runner's snapshot ``pkg/``, the kernel's start-up file);
- read-write: the role's own folder in the sandbox, a private ``/tmp`` (also ``/dev/shm``) on disk, and the
  files the grader gives the role (the kernel's connection and results files);
- ``/dev/null``, ``zero``, ``full``, ``random``, ``urandom`` (and the NVIDIA devices, where there are), and a
  ``/proc`` of its own PID namespace: no process of the grader, of the other role or of another grading.

Nothing else exists there: not the instructor's home, not the course checkout (an environment inside
it is shown alone), not the autograder zip or Otter's folder with the hidden cases. The network
namespace has no interface but a loopback that is down, and the seccomp filter of
:mod:`autograder.grading.seccomp` refuses every socket but ``AF_UNIX`` and every new namespace, as for root.
Student code runs as the grader's user id, mapped to itself: it has no capability (they are dropped at
``execve``, and ``PR_SET_NO_NEW_PRIVS`` keeps it that way), so it cannot remount, unmount or change the
mapping. Every process of a launch is in one PID namespace, whose inode the launcher records before
student code runs: that is how the grader finds, measures and kills them (killing the namespace's first
process ends all of them), and no student process can leave it. Each launch has namespaces of its own,
so the notebook's kernel never sees the package runner, nor a grading the other.

The launcher stays outside, as the process the grader started: it forwards signals to the student
process, exits as it does, and kills it if the grader goes (``PR_SET_PDEATHSIG`` kills the namespace if the
launcher itself is killed).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from .seccomp import SOURCE as SECCOMP_SOURCE

SYSTEM_READ_ONLY = ("/usr", "/etc", "/sys", "/opt/conda")
"""System folders shown read-only where they exist (``/opt/conda``: a Docker image's Python)."""
TOP_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""Shown as the same link where they are links (merged /usr), else read-only."""
DEVICES = ("null", "zero", "full", "random", "urandom")
DEVICE_LINKS = (("/dev/fd", "/proc/self/fd"), ("/dev/stdin", "/proc/self/fd/0"), ("/dev/stdout", "/proc/self/fd/1"),
                ("/dev/stderr", "/proc/self/fd/2"))

LAUNCH = SECCOMP_SOURCE + r'''
import ctypes, json, os, select, signal, sys

_NEWNS, _NEWUTS, _NEWIPC, _NEWUSER, _NEWPID, _NEWNET = 0x20000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, \
    0x40000000
_RDONLY, _NOSUID, _NODEV, _NOEXEC, _REMOUNT, _BIND, _REC, _PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
_LOCKED = ((1, 1), (2, 2), (4, 4), (8, 8), (1024, 1024), (2048, 2048), (4096, 1 << 21))  # statvfs bit -> MS_ bit
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "ppc64": 203, "s390x": 217}
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)


def _fail(what, number=None):
    number = ctypes.get_errno() if number is None else number
    os.write(2, f"genai-hw sandbox: {what}: {os.strerror(number)}\n".encode())
    os._exit(126)


def _mount(source, target, fstype, flags, data=None, what=None):
    enc = lambda s: None if s is None else s.encode()
    if _libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        _fail(what or f"mount {target}")


def _locked(path):
    """The flags of the mount under ``path`` that a remount in a user namespace must keep."""
    try:
        have = os.statvfs(path).f_flag
    except OSError:
        return _NOSUID | _NODEV
    return sum(ms for st, ms in _LOCKED if have & st)


def _submounts(target):
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(target.rstrip("/") + "/"):
                found.append(point)
    return found


def _bind(root, dest, source, mode):
    target = root + dest
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600))
    _mount(source, target, None, _BIND | _REC, what=f"show {source}")
    extra = _RDONLY if mode == "ro" else 0
    extra |= 0 if mode == "dev" else _NOSUID | _NODEV
    for point in [target] + (_submounts(target) if mode == "ro" else []):
        _mount(None, point, None, _REMOUNT | _BIND | _locked(point) | extra,
               what=f"remount {point} ({'read-only' if mode == 'ro' else 'nosuid'})")


def _child(spec, argv, go, cwd):
    if _libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG: dies with the launcher
        _fail("prctl(PR_SET_PDEATHSIG)")
    if _libc.unshare(_NEWNS) != 0:
        _fail("a mount namespace of its own (unshare)")
    _mount(None, "/", None, _REC | _PRIVATE, what="make the mounts private")
    root = spec["root"]
    _mount("tmpfs", root, "tmpfs", _NOSUID | _NODEV, "mode=0755,size=1m", what="a root folder of its own")
    for dest, source, mode in sorted(spec["binds"], key=lambda b: (b[0].count("/"), b[0])):
        _bind(root, dest, source, mode)
    for dest, target in spec["links"]:
        os.makedirs(os.path.dirname(root + dest), exist_ok=True)
        os.symlink(target, root + dest)
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", _NOSUID | _NODEV | _NOEXEC, what="a /proc of its own")
    os.chdir(root)
    number = _PIVOT_ROOT.get(os.uname().machine)
    if number is None or _libc.syscall(number, b".", b".") != 0:
        _fail("pivot_root")
    if _libc.umount2(b".", 2) != 0:  # MNT_DETACH: the grader's file system is gone from here
        _fail("detach the old root")
    os.chdir("/")
    _mount(None, "/", None, _REMOUNT | _BIND | _RDONLY | _NOSUID | _NODEV, what="make / read-only")
    try:
        os.chdir(cwd)
    except OSError as err:
        _fail(f"enter {cwd}", err.errno)
    import resource
    for limit, value in ((resource.RLIMIT_NPROC, spec["nproc"]), (resource.RLIMIT_FSIZE, spec["fsize"]),
                         (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails with EFBIG
    with open("/proc/self/oom_score_adj", "w") as f:  # if the machine runs out of memory, student code dies first
        f.write("1000")
    os.umask(0o077)
    os.setsid()  # a signal to the launcher's group reaches the student process once, forwarded
    if os.read(go, 1) != b"1":  # the launcher recorded this namespace (or died: then nothing runs)
        os._exit(126)
    os.close(go)
    if _libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        _fail("prctl(PR_SET_NO_NEW_PRIVS)")
    try:
        _genai_hw_confine()
    except OSError as err:
        os.write(2, f"genai-hw sandbox: {err}\n".encode())
        os._exit(126)
    try:
        os.execv(argv[0], argv)
    except OSError as err:
        _fail(f"run {argv[0]}", err.errno)


def _main():
    spec, argv = json.loads(sys.argv[1]), sys.argv[2:]
    cwd = os.getcwd()
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(_NEWUSER | _NEWPID | _NEWNET | _NEWIPC | _NEWUTS) != 0:
        _fail("new user, PID, network and IPC namespaces (unshare)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        try:
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        except OSError as err:
            _fail(f"map the user in its namespace ({name})", err.errno)
    go, ready = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready)
        try:
            _child(spec, argv, go, cwd)
        finally:
            os._exit(126)
    os.close(go)
    try:
        inode = os.stat(f"/proc/{pid}/ns/pid").st_ino
        with open(spec["record"], "a") as f:
            f.write(f"{inode}\n")
    except OSError as err:
        os.kill(pid, signal.SIGKILL)
        _fail("record the namespace", err.errno)
    os.write(ready, b"1")
    os.close(ready)

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, forward)
    grader = spec["grader"]
    poller, child_fd = select.poll(), None
    try:
        child_fd = os.pidfd_open(pid)
        poller.register(child_fd, select.POLLIN)
        poller.register(os.pidfd_open(grader), select.POLLIN)
    except (AttributeError, OSError):
        poller = None
    while True:
        if os.getppid() != grader:  # the grader is gone: so is student code
            os.kill(pid, signal.SIGKILL)
            break
        if poller is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                os._exit(_code(status))
            select.select([], [], [], 0.2)
        elif any(fd == child_fd for fd, _ in poller.poll()):
            break
    _, status = os.waitpid(pid, 0)
    os._exit(_code(status))


def _code(status):
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    return os.waitstatus_to_exitcode(status) & 0xFF


_main()
'''
"""The launcher of a student process (``python -I -S -c LAUNCH SPEC ARGV...``): new namespaces, the file
system of :data:`SPEC`'s binds, the limits, ``setsid``, no new privileges, the seccomp filter, then ARGV.
A launcher that cannot do all of it writes why (``genai-hw sandbox: ...``) and exits 126, running nothing."""


@functools.cache
def environment_folders(python: str) -> tuple[str, ...]:
    """The folders the grading ``python`` needs (its environment and installation), resolved (asked of
    ``python`` once per process: the probe and every sandbox of a grader share the answer)."""
    code = ("import json, os, sys; print(json.dumps([os.path.realpath(p) for p in "
            "{sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}]))")
    out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=True)
    folders = set(json.loads(out.stdout))
    folders.add(os.path.dirname(os.path.realpath(python)))
    folders.add(os.path.dirname(os.path.abspath(python)))
    return tuple(sorted(folders))


def _under(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def system_binds(python_folders: tuple[str, ...]) -> tuple[list[list[str]], list[list[str]]]:
    """``(binds, links)`` every student process gets: the system's read-only folders, the Python's folders,
    the devices."""
    binds: list[list[str]] = []
    links: list[list[str]] = []
    shown: list[str] = []
    for top in TOP_LINKS:
        if os.path.islink(top):
            links.append([top, os.readlink(top)])
        elif os.path.isdir(top):
            binds.append([top, top, "ro"])
            shown.append(top)
    for folder in SYSTEM_READ_ONLY:
        if os.path.isdir(folder):
            binds.append([folder, folder, "ro"])
            shown.append(folder)
    for folder in python_folders:
        if os.path.isdir(folder) and not _under(folder, shown):
            binds.append([folder, folder, "ro"])
            shown.append(folder)
    devices = [f"/dev/{name}" for name in DEVICES]
    devices += sorted(str(p) for p in Path("/dev").glob("nvidia*") if p.is_char_device())
    binds += [[dev, dev, "dev"] for dev in devices if os.path.exists(dev)]
    links += [list(link) for link in DEVICE_LINKS]
    return binds, links


def command(python: str, spec: dict, argv: list[str]) -> list[str]:
    """``argv`` started through :data:`LAUNCH` with ``spec``."""
    return [python, "-I", "-S", "-c", LAUNCH, json.dumps(spec), *argv]


def pid_namespace(pid: int) -> int | None:
    """The inode of ``pid``'s PID namespace (None if it ended or cannot be read)."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def unavailable(python: str = sys.executable) -> str | None:
    """Why student processes cannot be put in namespaces of their own here (None: they can): the launcher
    runs ``python -c pass`` in them once."""
    import tempfile

    try:
        folders = environment_folders(python)
    except (OSError, subprocess.SubprocessError, ValueError) as err:
        return f"cannot run {python} ({err})"
    with tempfile.TemporaryDirectory(prefix="genai-hw-probe-") as tmp:
        (Path(tmp) / "root").mkdir()
        binds, links = system_binds(folders)
        spec = {"root": f"{tmp}/root", "binds": binds + [[tmp, tmp, "rw"]], "links": links,
                "record": f"{tmp}/record", "grader": os.getpid(), "nproc": 64, "fsize": 2**20}
        try:
            proc = subprocess.run(command(python, spec, [python, "-I", "-S", "-c", "pass"]), cwd=tmp,
                                  capture_output=True, text=True, timeout=60, start_new_session=True)
        except (OSError, subprocess.SubprocessError) as err:
            return str(err)
        if proc.returncode != 0:
            lines = proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"]
            return lines[-1].removeprefix("genai-hw sandbox: ")
    return None
