"""What student code may do: who it runs as, where, with what, and how it ends.

Every process that runs submitted code (the package runner of
:mod:`autograder.grading.harness`, the notebook's Jupyter kernel started by
:mod:`autograder.grading.plugin`, and whatever those start) is launched with
:meth:`Sandbox.popen_kwargs` and ended by :meth:`Sandbox.kill`. Nothing else
decides a student process's user, environment or working folder.

When the grader runs as root (Gradescope, containers, CI), a grading takes a
*slot*: two unprivileged user ids that no account uses, one for the package
runner and one for the notebook's kernel (so the notebook cannot reach the
runner either). A slot is held with ``flock`` for the grading's lifetime, so
gradings running side by side never share a user id, and a slot left behind
by a grader that was killed is reaped (its processes killed, its files
removed) before it is used again. Student processes then cannot signal the
grader, read its ``/proc/<pid>/environ``, ``fd``, ``cwd`` or memory, read its
private folders (Otter's temporary folder, the reference, the hidden cases),
or write to results. ``/proc/<pid>/cmdline`` stays world-readable on Linux,
so no path a student may learn from it can be readable by them.

Where the grader is not root (an instructor's laptop) and Linux lets any user make namespaces, each
student process runs in namespaces of its own instead (:mod:`autograder.grading.namespaces`): its own PID, mount,
network and IPC namespaces, a file system that holds only the grading environment (read-only), its own
folder and a private temporary folder. Where neither is possible nothing is isolated, and a grading runs
only when the instructor asks for it explicitly (``GENAI_HW_UNSAFE_NO_ISOLATION=1``, which
``genai-hw grade --unsafe-no-isolation`` sets): student code then runs as the grader's user. Processes are
still found (by a marker in their environment) and killed when grading ends. :func:`isolation` says which
of the three (``users``, ``namespaces``, ``none``) a grading gets.

The folders of one grading, under ``/tmp/genai-hw-sandbox-<slot>-<random>``
(mode 0711: nobody but root may list it)::

    pkg/        root-owned, read-only for students: the runner, the wire code,
                the snapshot of the submitted genai_hw/ and the data it loads
    package/    home and working folder of the package runner (its user, 0700)
    notebook/   a copy of the submission, the kernel's working folder (its user, 0700)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import namespaces
from .seccomp import SOURCE as SECCOMP_SOURCE

UID_BASE = int(os.environ.get("GENAI_HW_SANDBOX_UID_BASE", "59000"))
"""First user id of the pool; slot ``n`` uses ``UID_BASE + 2n`` (package) and ``UID_BASE + 2n + 1`` (notebook)."""
SLOTS = 256
ROLES = ("package", "notebook")
MARKER = "GENAI_HW_SANDBOX"
"""Environment variable that every student process inherits: finds them when nothing is isolated."""
TEMP_ROOTS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
"""World-writable folders whose entries owned by a slot's users are removed when the slot is reaped."""
SNAPSHOT_LIMIT_BYTES = 200 * 2**20
SNAPSHOT_LIMIT_FILES = 2000

# Time limits (wall clock). The package is graded first, then the notebook runs, so a grading ends within
# about PACKAGE_LIMIT + NOTEBOOK_LIMIT plus Otter's own start and finish, whatever the submission does.
CELL_TIMEOUT = float(os.environ.get("GENAI_HW_CELL_TIMEOUT", "120"))
"""Seconds one notebook cell may run before the kernel is interrupted."""
NOTEBOOK_LIMIT = float(os.environ.get("GENAI_HW_NOTEBOOK_LIMIT", "210"))
"""Seconds the whole notebook may run; then every process of the notebook user is killed."""
PACKAGE_LIMIT = float(os.environ.get("GENAI_HW_PACKAGE_LIMIT", "210"))
"""Seconds for all package cases of one grading, reruns included, from the start of the package grading."""

# Resource limits, per role (all processes of that role's user together), the same on every machine.
MEMORY_MIB = {
    "package": int(os.environ.get("GENAI_HW_PACKAGE_MEMORY_MIB", "300")),
    "notebook": int(os.environ.get("GENAI_HW_NOTEBOOK_MEMORY_MIB", "400")),
}
"""Memory (MiB, summed over the role's processes: anonymous and shared pages, not mapped files) past which the
role's processes are killed, unless the role's *baseline* leaves less than ``ALLOWANCE_MIB`` of it to student
code. The baseline is what the role's process holds once Python and the homework's libraries are loaded,
before any student code runs (the runner's own report, sent before it imports the package; the kernel's
memory once it is ready, having loaded the same libraries): about 15 MiB with numpy, 145 MiB with torch's CPU
build, 280 MiB with its CUDA build (what pip installs from PyPI on Linux). The limit is then
``max(MEMORY_MIB, baseline + ALLOWANCE_MIB)``: the same on every machine, for root and for a normal user,
and no build of a library eats what student code is promised."""
ALLOWANCE_MIB = {
    "package": int(os.environ.get("GENAI_HW_PACKAGE_ALLOWANCE_MIB", "155")),
    "notebook": int(os.environ.get("GENAI_HW_NOTEBOOK_ALLOWANCE_MIB", "236")),
}
"""Memory (MiB) that student code may always add to its role's baseline: what the CPU build of torch leaves
of ``MEMORY_MIB`` (145 MiB for the runner, 164 MiB for a kernel, bench/limits.py)."""
STARTUP_MIB = int(os.environ.get("GENAI_HW_STARTUP_MEMORY_MIB", "1536"))
"""While a role's process loads the homework's libraries (no student code has run yet, its baseline is
not known), its limit is this much higher: room for the largest build of the libraries."""
DATA_FACTOR = 2
"""RLIMIT_DATA of each student process is its data size once the libraries are loaded plus its role's memory
limit times this (set by the process itself, before any student code runs): one huge allocation fails at
once with MemoryError instead of racing the watcher. Generous, since the limit counts address space that is
never touched, and a kernel that floods its output holds the unsent messages too."""


def data_allowance_mib(role: str) -> int:
    """MiB a process of ``role`` may add to its data size once its libraries are loaded (``DATA_FACTOR`` times
    the role's memory limit): the runner and the kernel each set their RLIMIT_DATA from this."""
    return MEMORY_MIB[role] * DATA_FACTOR
MAX_PROCESSES = int(os.environ.get("GENAI_HW_MAX_PROCESSES", "128"))
"""RLIMIT_NPROC: processes and threads one student user may have at once."""
MAX_FILE_MIB = int(os.environ.get("GENAI_HW_MAX_FILE_MIB", "64"))
"""RLIMIT_FSIZE: the largest file student code may write (a larger write fails with 'File too large')."""
OUTPUT_LIMIT_BYTES = int(os.environ.get("GENAI_HW_OUTPUT_LIMIT_BYTES", str(2 * 2**20)))
"""Notebook output kept (all cells together); the rest is dropped with a note."""
MESSAGE_LIMIT_BYTES = 8 * 2**20
"""Largest single message the grader accepts from the kernel (a larger one is dropped by ZeroMQ; a plot is
a few hundred kB)."""
MESSAGE_QUEUE = 8
"""Messages from the kernel that may wait in the grader's ZeroMQ queues, per socket: with
``MESSAGE_LIMIT_BYTES``, at most 64 MiB that the grader holds for a kernel that floods it."""
WATCH_INTERVAL = float(os.environ.get("GENAI_HW_WATCH_INTERVAL", "0.05"))
"""Seconds between two samples of the student users' memory (bench/limits.py measures what watching costs)."""

UNSAFE_ENV = "GENAI_HW_UNSAFE_NO_ISOLATION"
"""Set to ``1`` (``genai-hw grade --unsafe-no-isolation``): grade even where student code cannot be isolated."""
SHOW_ENV = "GENAI_HW_SANDBOX_SHOW"
"""Folders (``:``-separated) that student code in namespaces may read and write, for tests that collect what
an attack found; nothing else of the grader's machine is shown."""
MODES = ("users", "namespaces", "none")
"""How student code is isolated: users of its own (root), namespaces of its own (a normal user on Linux), or
not at all (the instructor asked for it)."""
CONTAINER_HINT = (
    "run the grader as root in a throw-away container (for example `docker run --rm -it -v \"$PWD\":/course "
    "-w /course python:3.11 bash`, then the README's set-up), where each grading runs its student code as "
    "unprivileged users of its own (docs/grading.md)")
NOT_ISOLATED = (
    "Submissions are NOT isolated: the grader is not root and this machine gives it no namespaces to put "
    "student code in, so student code runs as your own user and can read your files and signal the grader. "
    "To grade untrusted submissions, " + CONTAINER_HINT + "."
)
NO_ISOLATION = (
    "submissions cannot be isolated here: the grader is not root, and student code cannot be put in "
    "namespaces of its own ({reason}). Grade as root in a container instead: " + CONTAINER_HINT + "; or allow "
    "user namespaces (`sysctl kernel.unprivileged_userns_clone=1` on Debian/Ubuntu, or "
    "`kernel.apparmor_restrict_unprivileged_userns=0` on Ubuntu 24.04). To grade anyway with student code "
    "running as your own user, pass --unsafe-no-isolation (every row and the report then say so)."
)


DROP_STEPS = SECCOMP_SOURCE + """
import ctypes, os, resource, signal, sys
uid, gid, nproc, fsize = (int(a) for a in sys.argv[1:5])
for limit, value in ((resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_CORE, 0)):
    resource.setrlimit(limit, (value, value))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails with EFBIG instead of killing
with open("/proc/self/oom_score_adj", "w") as f:  # if the machine runs out of memory, student code dies first
    f.write("1000")
os.umask(0o077)
os.setgroups([])
os.setresgid(gid, gid, gid)
os.setresuid(uid, uid, uid)
if ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    raise SystemExit("genai-hw sandbox: prctl(PR_SET_NO_NEW_PRIVS) failed")
try:
    _genai_hw_confine()
except OSError as err:
    raise SystemExit(f"genai-hw sandbox: {err}") from None
"""
DROP = DROP_STEPS + "os.execv(sys.argv[5], sys.argv[5:])\n"
"""Sets the student process's limits, makes it the OOM killer's first choice (oom_score_adj 1000; a grader
without CAP_SYS_RESOURCE cannot stop it lowering that to 0, so MemoryWatch puts it back), becomes the student
user (no supplementary groups, private files by default, and no way back up through a setuid program:
no_new_privs), installs the seccomp filter of :mod:`autograder.grading.seccomp` (no network, no namespaces, no
System V IPC or memfd), then runs the command. A launcher that cannot do all of it exits with a message
and runs nothing."""


class SandboxError(RuntimeError):
    """The sandbox cannot be set up; the message says what to change."""


def preflight(python: str = sys.executable, allow_none: bool | None = None) -> str:
    """Check, before grading anything, that student code can run here as it will (its users or namespaces,
    the Python, the seccomp filter, a free slot): raises :class:`SandboxError` naming the cause and the fix.
    Returns the isolation gradings will get (one of :data:`MODES`)."""
    box = Sandbox(python=python, allow_none=allow_none)
    box.close()
    return box.mode


def isolating() -> bool:
    """True when student code runs as separate users (the grader is root)."""
    return os.geteuid() == 0


_UNAVAILABLE: dict[str, str | None] = {}


def isolation(python: str = sys.executable, allow_none: bool | None = None) -> str:
    """How this grader isolates student code (one of :data:`MODES`): ``users`` as root; ``namespaces`` as a
    normal user where the launcher of :mod:`autograder.grading.namespaces` works here (tried once per process);
    else ``none`` if ``allow_none`` (by default: :data:`UNSAFE_ENV` is ``1``) and :class:`SandboxError` saying
    what to do if not."""
    if isolating():
        return "users"
    if python not in _UNAVAILABLE:
        _UNAVAILABLE[python] = namespaces.unavailable(python)
    reason = _UNAVAILABLE[python]
    if reason is None:
        return "namespaces"
    if allow_none if allow_none is not None else os.environ.get(UNSAFE_ENV) == "1":
        return "none"
    raise SandboxError(NO_ISOLATION.format(reason=reason))


ISOLATION_WORDS = {
    "users": "each submission's code runs as unprivileged users of its own (the grader is root)",
    "namespaces": "each submission's code runs in Linux namespaces of its own: it sees only the grading "
                  "environment (read-only), its own folder and a private /tmp, has no network, and cannot see or "
                  "signal any other process (the grader is not root)",
}
"""What the isolating :data:`MODES` mean, for the instructor (``genai-hw grade`` prints it; for ``none`` it
warns with :data:`NOT_ISOLATED`)."""


def _base_dir() -> Path:
    """Where sandboxes live: /tmp when isolating (every student user can reach it), else the temp folder."""
    return Path("/tmp") if isolating() else Path(tempfile.gettempdir())


def _slots_dir() -> Path:
    path = Path("/tmp") / "genai-hw-slots"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise SandboxError(f"{path} is not a folder owned by the grader")
    os.chmod(path, 0o700)
    return path


def _gradings_dir() -> Path:
    """Where the gradings of this (normal) user in namespaces hold their locks: ``/tmp/genai-hw-gradings-<uid>``
    (0700), shared by gradings side by side whatever their ``TMPDIR``."""
    path = Path("/tmp") / f"genai-hw-gradings-{os.geteuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise SandboxError(f"{path} is not a folder owned by the grader")
    return path


def _grading_lock(token: str, root: Path):
    """A lock held for a grading in namespaces (its file names the sandbox, for :func:`reap_abandoned`)."""
    handle = open(_gradings_dir() / f"{token}.lock", "a+")  # noqa: SIM115 - held for the grading
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write(f"{root}\n")
    handle.flush()
    return handle


def _alone_in(folder: Path, mine: str, pattern: str = "*.lock") -> bool:
    """True when no lock in ``folder`` (its files matching ``pattern``) but ``mine`` is held."""
    for path in folder.glob(pattern):
        if path.name == mine:
            continue
        try:
            with open(path, "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False
    return True


def in_namespaces(launched: dict[str, set[int]]) -> dict[int, str]:
    """The live processes (of this user) in the PID namespaces ``launched`` (role -> inodes), with their role."""
    owner = {inode: role for role, inodes in launched.items() for inode in inodes}
    found: dict[int, str] = {}
    if not owner:
        return found
    me, uid = os.getpid(), os.getuid()
    for pid in _process_ids():
        if pid == me:
            continue
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
        except OSError:
            continue
        role = owner.get(namespaces.pid_namespace(pid))
        if role is not None:
            found[pid] = role
    return found


def kill_namespaces(inodes, rounds: int = 50) -> int:
    """SIGKILL every process in the PID namespaces that ``inodes()`` names, until none is left (killing a
    namespace's first process makes the kernel kill the rest). Returns how many kills were sent."""
    sent = 0
    for _ in range(rounds):
        pids = list(in_namespaces({"": set(inodes())}))
        if not pids:
            return sent
        sent += _kill_all(pids)
    return sent


def _kill_all(pids: list[int]) -> int:
    """SIGKILL each of ``pids``, then a moment for the kernel; returns how many kills were sent."""
    sent = 0
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            sent += 1
    time.sleep(0.01)
    return sent


def slot_uids(slot: int) -> dict[str, int]:
    return {"package": UID_BASE + 2 * slot, "notebook": UID_BASE + 2 * slot + 1}


def _uid_is_free(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return True
    return False


def _process_ids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _process_uids(pid: int) -> tuple[set[int], bool]:
    """The real/effective/saved/fs uids of ``pid`` and whether it is a zombie: every one of its tasks
    (threads) has ended. A process whose main thread exited while another thread runs shows a zombie
    leader, but it lives on and holds memory: it is not a zombie here."""
    uids: set[int] = set()
    zombie = False
    with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("State:"):
                zombie = line.split()[1] in ("Z", "X")
            elif line.startswith("Uid:"):
                uids = {int(v) for v in line.split()[1:]}
                break
    if zombie and _live_task(pid) is not None:
        zombie = False
    return uids, zombie


def _live_task(pid: int) -> int | None:
    """A task (thread) of ``pid`` that has not ended, if any."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", encoding="utf-8", errors="replace") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return int(tid)
    return None


def _has_marker(pid: int, tokens: set[str]) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            entries = set(f.read().split(b"\0"))
    except OSError:
        return False
    return any(f"{MARKER}={token}".encode() in entries for token in tokens)


def processes_of(uids: set[int] | None = None, tokens: set[str] | None = None) -> list[int]:
    """Live processes running as one of ``uids`` (or, without uids, carrying one of the markers ``tokens``)."""
    found = []
    me = os.getpid()
    for pid in _process_ids():
        if pid == me:
            continue
        try:
            if uids is not None:
                owners, zombie = _process_uids(pid)
                if owners & uids and not zombie:
                    found.append(pid)
            elif tokens and _has_marker(pid, tokens):
                _, zombie = _process_uids(pid)
                if not zombie:
                    found.append(pid)
        except OSError:
            continue  # ended meanwhile
    return found


def kill_processes(uids: set[int] | None = None, tokens: set[str] | None = None, rounds: int = 50) -> int:
    """SIGKILL every process of ``uids`` (or with one of the markers ``tokens``), by pid, until none is left.

    A process that forks while we kill is caught by the next round. Returns
    how many kills were sent.
    """
    sent = 0
    for round_ in range(rounds):
        pids = processes_of(uids, tokens)
        if not pids:
            return sent
        if uids is not None and 1 <= round_ <= 3:
            for uid in uids:  # still there after a round by pid (forking, say): all of the user's at once
                sent += _kill_as(uid)
            pids = processes_of(uids, tokens)
        sent += _kill_all(pids)
    return sent


KILL_AS = """\
import os, signal, sys
uid = int(sys.argv[1])
os.setgroups([])
os.setresgid(uid, uid, uid)
os.setresuid(uid, uid, uid)
try:
    os.kill(-1, signal.SIGKILL)
except ProcessLookupError:
    pass
"""
"""``kill(-1, SIGKILL)`` as the student user: the kernel sends it to every process that user may signal,
which is every process of the user (and no other), in one call, whatever their state."""


def _kill_as(uid: int) -> int:
    """Kill every process of ``uid`` from a short-lived process of that user (root only). Returns 1 if
    it ran."""
    if os.geteuid() != 0 or uid in (0, os.geteuid()):
        return 0
    try:
        subprocess.run([sys.executable, "-I", "-S", "-c", KILL_AS, str(uid)], timeout=10, check=False,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return 0
    return 1


def _status_text(pid: int | str) -> str:
    fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 8192):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def _parse_status(text: str) -> dict[str, str]:
    return {key: value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def _status(pid: int | str) -> dict[str, str]:
    return _parse_status(_status_text(pid))


def _real_uid(text: str) -> int | None:
    """The real user id in a ``/proc/PID/status`` text, found without parsing the rest (the memory watch reads
    every process on the machine 20 times a second: parsing each whole took 8 ms of CPU a sample)."""
    start = text.find("\nUid:")
    if start < 0:
        return None
    fields = text[start + 5:text.find("\n", start + 5)].split()
    return int(fields[0]) if fields else None


def oom_kill_counter() -> Path | None:
    """The file that counts this machine's (container's) OOM kills, if the grader can read one: the memory
    cgroup's ``memory.events`` (v2) or ``memory.oom_control`` (v1) of the grader's own cgroup."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            candidate = Path("/sys/fs/cgroup") / path.lstrip("/") / "memory.events"
        elif "memory" in controllers.split(","):
            candidate = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.oom_control"
        else:
            continue
        if read_oom_kills(candidate) is not None:
            return candidate
    return None


def read_oom_kills(path: Path | None) -> int | None:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError, AttributeError):
        return None
    return None


def memory_backed_roots(roots: tuple[str, ...] = TEMP_ROOTS) -> list[str]:
    """The folders of ``roots`` that live on tmpfs (``/dev/shm`` mostly): a file there is memory that no
    process's RSS shows, and killing its writer does not give it back."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return []
    found = []
    for root in roots:
        best = max((m for m in mounts if root == m[0] or root.startswith(m[0].rstrip("/") + "/")),
                   key=lambda m: len(m[0]), default=None)
        if best is not None and best[1] == "tmpfs" and os.path.isdir(root):
            found.append(root)
    return found


FILES_SCANNED = 10_000
"""Entries of a memory-backed folder looked at per sample; past that, the rest counts as unseen."""


def memory_in_files(roots: list[str], uids: set[int]) -> dict[int, int]:
    """KiB that the files owned by each of ``uids`` take in the memory-backed folders ``roots``."""
    used = dict.fromkeys(uids, 0)
    stack, seen = list(roots), 0
    while stack and seen < FILES_SCANNED:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid in used:
                used[info.st_uid] += info.st_blocks // 2
            if stat.S_ISDIR(info.st_mode):
                stack.append(entry.path)
    return used


def _memory_devices(roots: list[str]) -> set[int]:
    """The devices of the memory-backed folders ``roots`` (memfds, on the kernel's own, are refused to
    student code by the seccomp filter)."""
    devices = set()
    for root in roots:
        with contextlib.suppress(OSError):
            devices.add(os.stat(root).st_dev)
    return devices


def _unlinked_memory_kib(pid: int, devices: set[int], seen: set[tuple[int, int]]) -> int:
    """KiB held by memory-backed files that ``pid`` keeps open but that no folder shows (a file of /dev/shm
    deleted after opening, ``O_TMPFILE``): no scan of the folders finds them and no process's RSS shows them
    unless mapped. Each file is counted once (``seen``)."""
    total = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            info = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        key = (info.st_dev, info.st_ino)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 0 and info.st_dev in devices and key not in seen:
            seen.add(key)
            total += info.st_blocks // 2
    return total


def _unreclaimable_kib(status: dict[str, str]) -> int:
    """A process's memory that the kernel cannot simply drop: its anonymous and shared-memory pages
    (``RssAnon + RssShmem``). Pages of mapped files, such as the libraries torch loads (about 75 MiB),
    are page cache that every process shares and the kernel reclaims under pressure, so importing a large
    library does not count against the limit; what the code allocates does. ``VmRSS`` where the kernel
    does not say."""
    if "RssAnon" in status:
        return int(status["RssAnon"].split()[0]) + int(status.get("RssShmem", "0 kB").split()[0])
    return int(status.get("VmRSS", "0 kB").split()[0])


def _keep_oom_first(pid: int) -> None:
    """Put a student process back at oom_score_adj 1000 if it lowered it (a grader without CAP_SYS_RESOURCE,
    such as root in a Docker container with the default capabilities, cannot forbid lowering it to 0)."""
    path = f"/proc/{pid}/oom_score_adj"
    with contextlib.suppress(OSError):
        with open(path, "rb") as f:
            if f.read().strip() == b"1000":
                return
        with open(path, "w") as f:
            f.write("1000")


class MemoryWatch:
    """Samples each role's memory (the anonymous and shared memory of all its processes together, see
    :func:`_unreclaimable_kib`, plus the files its user owns in memory-backed temporary folders such as
    ``/dev/shm``) and kills a role that goes over its limit. ``over[role]`` then holds the memory it had;
    ``peak[role]`` is the largest sample.

    Student code that grows faster than the sampling (many processes allocating at once) can still run
    the machine out of memory. The kernel's OOM killer then ends a student process (they all have
    ``oom_score_adj`` 1000, and each sample puts back one that lowered it), and the watch counts that as
    the role going over its limit: where the machine's OOM kills can be read (``oom_kill_counter``) and no
    other grading runs beside this one, a kill during a sample interval charges the role that was running
    (``phase``, else every role that held memory). With the grader's memory plus one role's limit inside
    the machine's memory, an OOM kill means the role was past its limit, so a submission gets the same
    result on a small machine as on a large one.
    """

    def __init__(self, sandbox: Sandbox, limits: dict[str, int] | None = None,
                 interval: float = WATCH_INTERVAL) -> None:
        self.sandbox, self.limits, self.interval = sandbox, dict(limits or MEMORY_MIB), interval
        self.over: dict[str, float] = {}
        """MiB a role had when it was stopped for memory."""
        self.peak: dict[str, float] = {role: 0.0 for role in ROLES}
        """The largest sample of each role (MiB)."""
        self.baseline: dict[str, float | None] = dict.fromkeys(ROLES)
        """MiB each role's process held before student code ran (None: not known yet, libraries loading)."""
        self.baseline_seen: dict[str, float | None] = dict.fromkeys(ROLES)
        """The last baseline each role reported (kept after the role ends)."""
        self.phase: str | None = None
        self.oom_file = oom_kill_counter()
        if sandbox.mode == "namespaces":  # each role's folders are all it can write to
            self.role_roots = {role: memory_backed_roots((str(sandbox.homes[role]), str(sandbox.temps[role])))
                               for role in ROLES}
            self.memory_roots = sorted({root for roots in self.role_roots.values() for root in roots})
        else:
            self.memory_roots = memory_backed_roots()
            self.role_roots = {}
        self.memory_devices = _memory_devices(self.memory_roots)
        self._oom_kills = read_oom_kills(self.oom_file)
        self._last: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="genai-hw-memory", daemon=True)

    def start(self) -> MemoryWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def usage(self) -> dict[str, float]:
        """Resident MiB of each role now (one pass over /proc)."""
        box = self.sandbox
        roles = {uid: role for role, uid in box.uids.items()} if box.users else {}
        me = os.getuid()
        used = {role: 0 for role in ROLES}
        seen: set[tuple[int, int]] = set()
        contained = in_namespaces(box.launched()) if box.mode == "namespaces" else {}
        for pid in contained if box.mode == "namespaces" else _process_ids():
            try:
                text = _status_text(pid)
                if box.users and _real_uid(text) not in roles:  # not a student process: nothing more to read
                    continue
                status = _parse_status(text)
                if status.get("State", "").startswith(("Z", "X")):  # its main thread ended: read a live one's
                    tid = _live_task(pid)
                    if tid is None:
                        continue
                    status = {**_status(f"{pid}/task/{tid}"), "Uid": status["Uid"]}
                uid = int(status["Uid"].split()[0])
                if box.users:
                    role = roles.get(uid)
                elif box.mode == "namespaces":
                    role = contained[pid]
                elif uid == me and pid != os.getpid():
                    role = next((r for r in ROLES if _has_marker(pid, {f"{box.token}-{r}"})), None)
                else:
                    role = None
                if role is not None:
                    used[role] += _unreclaimable_kib(status)
                    if box.isolated:
                        _keep_oom_first(pid)
                        used[role] += _unlinked_memory_kib(pid, self.memory_devices, seen)
            except (OSError, KeyError, ValueError, IndexError):
                continue
        if box.users and self.memory_roots:
            for uid, kib in memory_in_files(self.memory_roots, set(roles)).items():
                used[roles[uid]] += kib
        for role, roots in self.role_roots.items():
            if roots:
                used[role] += memory_in_files(roots, {me})[me]
        return {role: kib / 1024 for role, kib in used.items()}

    def set_baseline(self, role: str, mib: float | None) -> None:
        """The memory ``role``'s new process holds before any student code runs (None: a new process is
        starting and has not said yet). Only the memory above it counts against the role's limit."""
        self.baseline[role] = None if mib is None else max(0.0, float(mib))
        if mib is not None:
            self.baseline_seen[role] = self.baseline[role]

    def limit_of(self, role: str) -> float:
        """The role's memory limit now (MiB, all its processes): ``max(limit, baseline + allowance)``, and
        larger by ``STARTUP_MIB`` while its libraries load."""
        base = self.baseline[role]
        return self.limits[role] + STARTUP_MIB if base is None else self._limit_above(role, base)

    def _limit_above(self, role: str, base: float) -> float:
        return max(float(self.limits[role]), base + ALLOWANCE_MIB[role])

    def sample(self) -> None:
        used = self.usage()
        for role, mib in used.items():
            self.peak[role] = max(self.peak[role], mib)
            if mib > self.limit_of(role):
                self.over[role] = max(self.over.get(role, 0.0), mib)
                self._stop_role(role)
        kills = read_oom_kills(self.oom_file)
        # An OOM kill is charged only to a grading that runs alone: beside other gradings it may be theirs.
        if kills is not None and self._oom_kills is not None and kills > self._oom_kills and self.sandbox.alone():
            running = [role for role in ROLES if self._last.get(role) or used[role]]
            for role in [self.phase] if self.phase else running:
                self.over[role] = max(self.over.get(role, 0.0), self.peak[role], float(self.limits[role]))
                self._stop_role(role)
        self._oom_kills = kills
        self._last = used

    def _stop_role(self, role: str) -> None:
        """Kill the role's processes and free what its files in memory-backed folders hold."""
        self.sandbox.kill(role)
        if self.sandbox.users and self.memory_roots:
            remove_files_of({self.sandbox.uids[role]}, tuple(self.memory_roots))
        elif self.role_roots.get(role):
            remove_tree(self.sandbox.temps[role])  # the role's /tmp: a restarted runner gets an empty one
            self.sandbox.temps[role].mkdir(mode=0o700, exist_ok=True)

    def message(self, role: str) -> str:
        """Why a role was stopped: the limit, and what was counted."""
        what = "the memory that all its processes allocated" + (
            ", and its files in memory-backed folders such as /dev/shm" if self.memory_roots else "")
        base = self.baseline_seen[role]
        held = (f"; Python and the homework's libraries held {base:.0f} MiB of it before any code of yours ran"
                if base is not None else "")
        words = _ROLE_WORDS[role]
        return f"used more than {self.limit_known(role):.0f} MiB of memory (the limit for {words}: {what}{held})"

    def limit_known(self, role: str) -> float:
        """The role's limit with its last known baseline (its plain limit if it never reported one)."""
        base = self.baseline_seen[role]
        return float(self.limits[role]) if base is None else self._limit_above(role, base)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


_ROLE_WORDS = {"package": "your package's functions", "notebook": "the notebook"}


REMOVE_STEPS = 10_000_000
"""Folders entered at most by one :func:`remove_tree` (a bound, never reached by a tree a disk can hold)."""


def remove_tree(path: str | os.PathLike) -> bool:
    """Remove ``path`` and everything under it without following a link, and never raise.

    Iterative and by directory descriptor: a tree thousands of levels deep (deeper than ``PATH_MAX`` or
    Python's recursion limit), folders whose modes forbid reading, and links anywhere in it are all
    removed. Call it once no student process can still change the tree. Returns whether it is gone.
    """
    path = os.fspath(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return not os.path.lexists(path)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)
        fd = os.open(path, flags)
    except OSError:
        return False
    names: list[str] = []  # the folders between ``path`` and ``fd``
    steps = 0
    try:
        while True:
            steps += 1
            if steps > REMOVE_STEPS:
                return False
            descend = None
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                try:
                                    os.rmdir(entry.name, dir_fd=fd)
                                except OSError:
                                    descend = entry.name
                                    break
                            else:
                                os.unlink(entry.name, dir_fd=fd)
                        except FileNotFoundError:
                            continue
            except OSError:
                return False
            try:
                if descend is not None:  # a folder, not a link (scandir said so; no student process runs)
                    os.chmod(descend, 0o700, dir_fd=fd)
                    child = os.open(descend, flags, dir_fd=fd)
                    names.append(descend)
                elif names:
                    child = os.open("..", flags, dir_fd=fd)
                else:
                    break
            except OSError:
                return False
            os.close(fd)
            fd = child
            if descend is None:  # back up one level: the folder just emptied goes
                with contextlib.suppress(OSError):
                    os.rmdir(names.pop(), dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)
    return not os.path.lexists(path)


def _temp_entries_of(uids: set[int], roots: tuple[str, ...] = TEMP_ROOTS) -> list[str]:
    """The entries that ``uids`` own at the top of the world-writable temporary folders ``roots``."""
    found = []
    for root in roots:
        try:
            entries = list(os.scandir(root))
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid in uids:
                    found.append(entry.path)
    return found


def remove_files_of(uids: set[int], roots: tuple[str, ...] = TEMP_ROOTS) -> None:
    """Remove what ``uids`` own at the top of the world-writable temporary folders."""
    for path in _temp_entries_of(uids, roots):
        remove_tree(path)


IPC_KINDS = ("shm", "msg", "sem")


def ipc_objects_of(uids: set[int]) -> list[tuple[str, int]]:
    """System V IPC objects (``(kind, id)``) that one of ``uids`` owns or created. The seccomp filter of every
    student process refuses to make them; this is how a slot is checked (and cleared) all the same."""
    found = []
    for kind in IPC_KINDS:
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        if not lines:
            continue
        header = lines[0].split()
        for line in lines[1:]:
            row = dict(zip(header, line.split()))
            try:
                if {int(row.get("uid", -1)), int(row.get("cuid", -1))} & uids:
                    found.append((kind, int(row[header[1]])))
            except (ValueError, KeyError):
                continue
    return found


def remove_ipc_of(uids: set[int]) -> None:
    """Remove the System V IPC objects of ``uids`` (they outlive every process)."""
    import ctypes

    objects = ipc_objects_of(uids)
    if not objects:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    ipc_rmid = 0
    for kind, ident in objects:
        if kind == "shm":
            libc.shmctl(ident, ipc_rmid, None)
        elif kind == "msg":
            libc.msgctl(ident, ipc_rmid, None)
        else:
            libc.semctl(ident, 0, ipc_rmid)


def leftovers_of(uids: set[int]) -> list[str]:
    """What of ``uids`` is still on the machine: live processes (any live thread counts), files at the top of
    the temporary folders, System V IPC objects. A slot is used only when this is empty."""
    return ([f"process {pid}" for pid in processes_of(uids=uids)] + _temp_entries_of(uids)
            + [f"System V {kind} {ident}" for kind, ident in ipc_objects_of(uids)])


def drop_special_files(folder: Path) -> list[str]:
    """Remove every link, device, FIFO and socket under ``folder`` (an unpacked upload), without following
    any, before anything reads the upload; returns a note for each. Otter's own unpacking makes only files
    and folders, but Gradescope's unpacking, or an instructor's, may keep links."""
    notes = []
    for parent, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = os.path.join(parent, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
                continue
            with contextlib.suppress(OSError):
                os.unlink(path)
            notes.append(f"{os.path.relpath(path, folder)}: " + (
                "a link in the upload, removed" if stat.S_ISLNK(mode) else "not a regular file, removed"))
        dirs[:] = [d for d in dirs if os.path.isdir(os.path.join(parent, d))
                   and not os.path.islink(os.path.join(parent, d))]
    return notes


def copy_tree(src: Path, dest: Path, skip: tuple[str, ...] = (), limit_bytes: int = SNAPSHOT_LIMIT_BYTES,
              limit_files: int = SNAPSHOT_LIMIT_FILES) -> list[str]:
    """Copy the regular files and folders of ``src`` into ``dest`` (created), never following a link.

    Symlinks, devices and FIFOs are skipped, and so are names in ``skip`` and
    whatever goes past the size or file-count limit. Returns notes on what
    was skipped.
    """
    notes: list[str] = []
    total, count = 0, 0
    dest.mkdir(parents=True, exist_ok=True)
    for folder, dirs, files in os.walk(src, followlinks=False):
        rel = Path(folder).relative_to(src)
        kept = []
        for name in sorted(dirs):
            path = Path(folder) / name
            if name in skip:
                continue
            if path.is_symlink():
                notes.append(f"{(rel / name).as_posix()}: a link, not copied")
                continue
            (dest / rel / name).mkdir(exist_ok=True)
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            path = Path(folder) / name
            if name in skip or name.endswith((".pyc", ".so", ".pyd")):
                continue
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode):
                notes.append(f"{(rel / name).as_posix()}: not a regular file, not copied")
                continue
            total += info.st_size
            count += 1
            if total > limit_bytes or count > limit_files:
                notes.append(f"{(rel / name).as_posix()}: over the upload's limit "
                             f"({limit_bytes // 2**20} MB, {limit_files} files), not copied")
                continue
            shutil.copyfile(path, dest / rel / name, follow_symlinks=False)
    return notes


def _chown_tree(path: Path, uid: int) -> None:
    for folder, dirs, files in os.walk(path):
        os.lchown(folder, uid, uid)
        for name in dirs + files:
            os.lchown(os.path.join(folder, name), uid, uid)


def _make_readable(path: Path) -> None:
    """Root-owned, readable by everyone, writable by nobody else."""
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def gpu_visible() -> bool:
    """Whether this machine shows an NVIDIA GPU (the student's runner then computes on it, and float32
    results get :data:`cases.GPU_FLOAT32_RTOL`). Decided here, not from what the runner reports."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def resolve_folders(program: str) -> str:
    """``program`` with the folder links on its way resolved, its own name kept: as root, scripts/setup.sh
    links the private checkout's ``.venv`` to the environment outside it, which student users can reach (the
    environment's own ``python`` link is what makes it that environment, so it stays)."""
    return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(program))), os.path.basename(program))


class Sandbox:
    """The student side of one grading: its users, folders and processes.

    ``Sandbox()`` takes a slot (when root) and makes the folders; ``close()``
    kills every student process and removes every file the grading's users
    made. Use it as a context manager, or call ``close()`` from a ``finally``.
    """

    def __init__(self, python: str = sys.executable, allow_none: bool | None = None) -> None:
        self.python = resolve_folders(python)
        self.token = secrets.token_hex(8)
        self.mode = isolation(self.python, allow_none)
        self.slot: int | None = None
        self._lock = None
        self.uids: dict[str, int] = {}
        if self.users:
            self._take_slot()
        label = self.slot if self.slot is not None else "ns" if self.mode == "namespaces" else "u"
        prefix = f"genai-hw-sandbox-{label}-"
        self.root = Path(tempfile.mkdtemp(prefix=prefix, dir=_base_dir()))
        os.chmod(self.root, 0o711 if self.users else 0o700)
        self.pkg = self.root / "pkg"
        self.pkg.mkdir(mode=0o700)
        self.homes = {role: self.root / role for role in ROLES}
        for role, home in self.homes.items():
            home.mkdir(mode=0o700)
            if self.users:
                os.chown(home, self.uids[role], self.uids[role])
        self.temps = {role: self.root / f"tmp-{role}" for role in ROLES}
        """Each role's /tmp (and /dev/shm) in namespaces."""
        self.shown: dict[str, list[list[str]]] = {role: [] for role in ROLES}
        """What the grader gave or shared with each role (``[path, path, "rw" or "ro"]``), shown in namespaces."""
        if self.mode == "namespaces":
            self._prepare_namespaces()
        self.closed = False
        self._killing = threading.Lock()
        self.helpers: list[subprocess.Popen] = []
        self.zygote = None
        """The grading's preloaded process (:mod:`autograder.grading.zygote`), once :meth:`preload` started it."""
        if self.users:
            self._check_python()
        self.watch = MemoryWatch(self).start()

    @property
    def isolated(self) -> bool:
        """Whether student code is isolated from the grader (as users of its own, or in namespaces)."""
        return self.mode != "none"

    @property
    def users(self) -> bool:
        """Whether student code runs as users of its own (the grader is root)."""
        return self.mode == "users"

    def _prepare_namespaces(self) -> None:
        for folder in (*self.temps.values(), self.root / "mnt", self.root / "ns"):
            folder.mkdir(mode=0o700)
        self._system = namespaces.system_binds(namespaces.environment_folders(self.python))
        self._pid_namespace = namespaces.pid_namespace(os.getpid())  # the grader's, where its launchers run
        self._lock = _grading_lock(self.token, self.root)

    # Slots ---------------------------------------------------------------

    def _take_slot(self) -> None:
        slots = _slots_dir()
        unusable: list[str] = []
        for slot in range(SLOTS):
            uids = slot_uids(slot)
            if not all(_uid_is_free(uid) for uid in uids.values()):
                continue
            handle = open(slots / f"slot-{slot}.lock", "a+")  # noqa: SIM115 - held for the grading
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                handle.close()
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    continue
                raise
            reap_slot(slot, handle)  # whatever a killed grader, or an earlier grading, left behind
            left = leftovers_of(set(uids.values()))
            if left:  # never grade beside something of an earlier grading
                unusable.append(f"slot {slot}: {', '.join(left[:3])}")
                handle.close()
                continue
            self.slot, self._lock, self.uids = slot, handle, uids
            return
        detail = f" ({len(unusable)} would not clear: {'; '.join(unusable[:3])})" if unusable else ""
        raise SandboxError(f"no sandbox slot is free: all {SLOTS} are in use or would not clear{detail}")

    def alone(self) -> bool:
        """True when no other grading holds a slot on this machine (as root), or no other grading of this user
        runs (in namespaces); unknown, hence False, when nothing is isolated."""
        if self.mode == "namespaces":
            return _alone_in(_gradings_dir(), f"{self.token}.lock")
        return self.users and _alone_in(_slots_dir(), f"slot-{self.slot}.lock", "slot-*.lock")

    def private_folder(self, name: str) -> Path:
        """A folder for the grader's own use inside the sandbox (``0700``: no student user may list or read
        it), removed with the sandbox, also by the slot's next user if this grader is killed."""
        folder = self.root / name
        folder.mkdir(mode=0o700)
        return folder

    def adopt(self, proc: subprocess.Popen) -> None:
        """A process of the grader's own (the reference's, started in a session of its own), killed with
        its group when the sandbox is cleared, like the student processes."""
        self.helpers.append(proc)

    def remember(self, folder: Path) -> None:
        """Record ``otter run``'s temporary folder: if this grader is killed, the slot's next user removes it."""
        if self.users and self._lock is not None and _is_otter_folder(folder):
            self._lock.write(f"{folder}\n")
            self._lock.flush()

    def _check_python(self) -> None:
        """Student users must be able to run the grading Python; say how to fix it if not."""
        try:
            # The libraries are found and their folder read, without importing one (0.1 s of CPU a grading).
            probe = ("import importlib.util, sys\n"
                     "if importlib.util.find_spec('numpy') is None:\n"
                     "    sys.exit('numpy cannot be found or read from here')")
            proc = subprocess.run(self.command("package", [self.python, "-I", "-c", probe]),
                                  capture_output=True, timeout=60, **self.popen_kwargs("package"))
            ok = proc.returncode == 0
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        except (OSError, subprocess.SubprocessError) as err:
            ok, detail = False, [str(err)]
        if not ok and "seccomp filter" in detail[0]:
            self.close()
            raise SandboxError(
                f"student code cannot be confined here ({detail[0]}): the grader needs Linux's seccomp and "
                "libseccomp (`apt-get install libseccomp2`; Ubuntu and Debian have it)")
        if not ok:
            self.close()
            raise SandboxError(
                f"the unprivileged grading user cannot run {self.python} ({detail[0]}). Student code never "
                "runs as root: make this Python and its packages readable by other users (every folder on the "
                "way needs o+x, for example `chmod o+x /root` when Python lives under /root), and keep the "
                "environment outside the course checkout, which must stay private (for example "
                "`python3 -m venv /opt/genai-hw/venv`, as .ci/run does)"
            )

    # Launching -------------------------------------------------------------

    def env(self, role: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The whole environment of a student process: nothing of the grader's leaks in."""
        home = str(self.homes[role])
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "USER": "genai-hw-student",
            "LOGNAME": "genai-hw-student",
            "LANG": "C.UTF-8",
            "TMPDIR": home,
            "MPLCONFIGDIR": os.path.join(home, ".matplotlib"),
            "JUPYTER_RUNTIME_DIR": os.path.join(home, ".jupyter-runtime"),
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "GENAI_HW_GRADING": "1",
            MARKER: f"{self.token}-{role}",
        }
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(extra or {})
        return env

    def command(self, role: str, argv: list[str]) -> list[str]:
        """``argv`` as it must be started for ``role``: through :data:`DROP`, which becomes the role's user.

        ``Popen(user=...)`` would make Python ``fork()`` the grader instead of
        ``vfork()``, and a fork while another thread of the grader is inside
        OpenBLAS can hang that thread for good (seen here); the drop to the
        student user therefore happens in a small exec'd launcher.
        """
        if self.mode == "namespaces":
            return namespaces.command(self.python, self._spec(role), argv)
        if not self.users:
            return list(argv)
        uid = self.uids[role]
        limits = [MAX_PROCESSES, MAX_FILE_MIB * 2**20]
        return [self.python, "-I", "-S", "-c", DROP, str(uid), str(uid), *map(str, limits), *argv]

    def _spec(self, role: str) -> dict:
        """What a launch of ``role`` in namespaces shows and limits (:data:`namespaces.LAUNCH`)."""
        binds, links = self._system
        temp = str(self.temps[role])
        home = str(self.homes[role])
        # SHOW_ENV: folders the instructor shows to student code on purpose (the security suite's reports).
        shown = [[f, f, "rw"] for f in os.environ.get(SHOW_ENV, "").split(":")
                 if f.startswith("/") and os.path.isdir(f)]
        return {"root": str(self.root / "mnt"), "binds": [*binds, [home, home, "rw"], ["/tmp", temp, "rw"],
                                                           ["/dev/shm", temp, "rw"], *self.shown[role], *shown],
                "links": links, "record": str(self.root / "ns" / role), "grader": os.getpid(),
                "nproc": MAX_PROCESSES, "fsize": MAX_FILE_MIB * 2**20}

    def preload(self, stack: list[str], kernel: bool = True) -> None:
        """Start the grading's zygote, which imports ``stack`` (and ipykernel for the notebook's kernel) once
        for every Python of this grading (:mod:`autograder.grading.zygote`): only where student code runs
        as users of its own, and once."""
        from . import zygote

        if self.zygote is not None or not self.users or self.closed or not zygote.enabled() or gpu_visible():
            return
        env = self.env("package")
        env = {name: env[name] for name in ("PATH", "LANG", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
                                             "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                             "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if name in env}
        modules = [*stack, *(zygote.KERNEL_MODULES if kernel else ())]
        try:
            folder = self.private_folder(f"zygote-{secrets.token_hex(4)}")
            env["HOME"] = env["TMPDIR"] = str(folder)
            self.zygote = zygote.Zygote(self.python, modules, DROP_STEPS, env, str(folder))
        except OSError:
            return
        self.adopt(self.zygote.proc)

    def preload_more(self, modules: list[str]) -> None:
        """Libraries the zygote (if any) imports too, before the next process it forks."""
        if self.zygote is not None:
            self.zygote.load(modules)

    def spawn(self, role: str | None, argv: list[str], env: dict[str, str], cwd: str, stdin=None, stdout=None,
              stderr=None):
        """``argv`` (``[python, -I, script, ...]`` or ``[python, -m, module, ...]``) forked by the zygote for
        ``role`` (None: the grader's own user, as the reference's process runs), or None where there is no
        zygote or it cannot: the caller then launches ``argv`` as before."""
        if self.zygote is None or self.closed or not argv or argv[0] != self.python:
            return None
        drop = None
        if role is not None:
            if not self.users:
                return None
            drop = [self.uids[role], self.uids[role], MAX_PROCESSES, MAX_FILE_MIB * 2**20]
        return self.zygote.spawn(argv, env, cwd, drop=drop, stdin=stdin, stdout=stdout, stderr=stderr,
                                 module=len(argv) > 2 and argv[1] == "-m")

    def popen_kwargs(self, role: str, env: dict[str, str] | None = None) -> dict:
        """Keyword arguments for ``subprocess.Popen`` that start :meth:`command` for ``role``."""
        return {"cwd": str(self.homes[role]), "env": env or self.env(role), "start_new_session": True}

    def give(self, path: Path, role: str) -> None:
        """Hand ``path`` (a file or folder this grader made) to the student user of ``role`` (in namespaces: show
        it to the role's processes launched from now on, read-write)."""
        if self.mode == "namespaces":
            self._show(path, role, "rw")
            return
        if not self.users:
            return
        if path.is_dir():
            _chown_tree(path, self.uids[role])
        else:
            os.chown(path, self.uids[role], self.uids[role])

    def seal(self, path: Path) -> None:
        """Make ``path`` (``pkg/`` or under it) readable by the package user of this grading only (no other
        grading's users, whichever slot they hold) and writable by no student user."""
        if self.mode == "namespaces":
            self._show(self.pkg, "package", "ro")
        elif self.users:
            _make_readable(path)
            self.share(self.pkg, "package")

    def share(self, path: Path, role: str) -> None:
        """Let ``role``'s user read ``path`` (a file or folder of the grader's), and no other student user:
        root-owned, group of that user (each slot's users have groups of their own ids), nothing for others.
        In namespaces: shown read-only to the role's processes launched from now on."""
        if not self.users:
            path.chmod(0o700 if path.is_dir() else 0o600)
            if self.mode == "namespaces":
                self._show(path, role, "ro")
            return
        os.chown(path, os.geteuid(), self.uids[role])
        path.chmod(0o750 if path.is_dir() else 0o640)

    def _show(self, path: Path, role: str, mode: str) -> None:
        path = str(path)
        home = str(self.homes[role])
        if path != home and not path.startswith(home + "/"):
            self.shown[role] = [b for b in self.shown[role] if b[0] != path] + [[path, path, mode]]

    def results_file(self, suffix: str) -> tuple[int, str]:
        """A file the notebook's kernel may write, in a folder it cannot change (``mkstemp``'s contract)."""
        path = self.root / f"kernel-results-{secrets.token_hex(6)}{suffix}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self.give(path, "notebook")
        return fd, str(path)

    # Ending ----------------------------------------------------------------

    def kill(self, role: str | None = None) -> int:
        """Kill every process of ``role`` (default: both), by pid, detached ones included. One kill at a
        time (the memory watch's thread kills too): a runner launched after this returns is not caught by
        a kill that started before."""
        with self._killing:
            if self.users:
                uids = set(self.uids.values()) if role is None else {self.uids[role]}
                return kill_processes(uids=uids)
            roles = ROLES if role is None else (role,)
            sent = 0
            if self.mode == "namespaces":
                sent += kill_namespaces(lambda: {ino for r, inos in self.launched().items() if r in roles
                                                 for ino in inos})
            return sent + kill_processes(tokens={f"{self.token}-{r}" for r in roles})

    def launched(self) -> dict[str, set[int]]:
        """The PID namespaces (inodes) of each role's launches whose launcher still runs (namespaces only).

        Each launcher records ``<its pid> <namespace inode>`` before student code runs. A namespace counts
        while its launcher (a child of this grader, carrying this grading's marker, in the grader's own PID
        namespace, where no student process can be) lives: the launcher outlives its namespace's processes
        (and kills them if it is killed), and an ended namespace's inode, which the kernel may give to a new
        namespace, is never taken for this grading's."""
        found: dict[str, set[int]] = {role: set() for role in ROLES}
        me, mine = os.getpid(), self._pid_namespace
        for role in ROLES:
            try:
                lines = (self.root / "ns" / role).read_text().split("\n")
            except OSError:
                continue
            for line in lines:
                try:
                    launcher, inode = (int(v) for v in line.split())
                    status = _status(launcher)
                except (OSError, ValueError):
                    continue
                if (int(status.get("PPid", "0")) == me and not status.get("State", "").startswith(("Z", "X"))
                        and namespaces.pid_namespace(launcher) == mine
                        and _has_marker(launcher, {f"{self.token}-{role}"})):
                    found[role].add(inode)
        return found

    def clear_role(self, role: str) -> None:
        """Kill every process of ``role`` and remove its home and, when isolating, its temporary files."""
        self.kill(role)
        remove_tree(self.homes[role])
        remove_tree(self.temps[role])
        if self.users:
            remove_files_of({self.uids[role]})
            remove_ipc_of({self.uids[role]})
        self.kill(role)  # anything that slipped in while files were removed

    def clear(self) -> None:
        """Kill every student process and remove what student code could have written.

        The sandbox's own folder stays (Otter removes the kernel's results
        file after the plugin's last hook); :meth:`close` removes it.
        """
        if hasattr(self, "watch"):
            self.watch.stop()
        if self.zygote is not None:
            self.zygote.close()
        for helper in self.helpers:
            if helper.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(helper.pid, signal.SIGKILL)
        self.kill()
        remove_tree(self.pkg)
        for role in ROLES:
            self.clear_role(role)

    def close(self) -> None:
        """:meth:`clear`, then remove the sandbox's folder and give the slot back."""
        if self.closed:
            return
        self.closed = True
        self.clear()
        remove_tree(self.root)
        if self._lock is not None:
            self._lock.close()
        if self.mode == "namespaces":
            with contextlib.suppress(OSError):
                (_gradings_dir() / f"{self.token}.lock").unlink()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_otter_folder(path: Path) -> bool:
    """``otter run``'s own temporary folder (``tmpXXXX/autograder/source``), owned by the grader."""
    try:
        return (path.is_absolute() and path.name.startswith("tmp") and path.lstat().st_uid == os.geteuid()
                and (path / "autograder" / "source").is_dir() and not path.is_symlink())
    except OSError:
        return False


def reap_slot(slot: int, lock) -> None:
    """Kill the processes and remove the files of a slot whose grader is gone (``lock`` is held).

    Also removes the folders its grader recorded with :meth:`Sandbox.remember`
    (``otter run``'s temporary folder, with the hidden cases in it).
    """
    uids = set(slot_uids(slot).values())
    kill_processes(uids=uids)
    remove_files_of(uids)
    remove_ipc_of(uids)
    for leftover in _base_dir().glob(f"genai-hw-sandbox-{slot}-*"):
        if leftover.lstat().st_uid == os.geteuid():
            remove_tree(leftover)
    lock.seek(0)
    for line in lock.read().splitlines():
        if _is_otter_folder(Path(line)):
            remove_tree(line)
    lock.seek(0)
    lock.truncate()


def _abandoned(folder: Path, pattern: str):
    """Each lock in ``folder`` (matching ``pattern``) that no grader holds, taken: ``(path, open handle)``."""
    for lock in sorted(folder.glob(pattern)):
        with open(lock, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a grader is using it
            yield lock, handle


def reap_abandoned() -> int:
    """Reap every slot that no live grader holds (after a grader was killed), or as a normal user the sandbox
    folders of gradings in namespaces that no grader holds (their processes died with their launchers, which
    end student code when the grader goes). Returns how many."""
    if not isolating():
        return _reap_namespace_gradings()
    reaped = 0
    for lock, handle in _abandoned(_slots_dir(), "slot-*.lock"):
        reap_slot(int(lock.stem.split("-")[1]), handle)
        reaped += 1
    return reaped


def _reap_namespace_gradings() -> int:
    try:
        folder = _gradings_dir()
    except (OSError, SandboxError):
        return 0
    reaped = 0
    for lock, handle in _abandoned(folder, "*.lock"):
        handle.seek(0)
        lines = handle.read().splitlines()
        if not lines:  # a grading that has just opened its lock and not yet taken it
            continue
        for line in lines:
            path = Path(line)
            with contextlib.suppress(OSError):
                if path.name.startswith("genai-hw-sandbox-ns-") and path.lstat().st_uid == os.geteuid():
                    remove_tree(path)
        with contextlib.suppress(OSError):
            lock.unlink()
        reaped += 1
    return reaped
