"""The seccomp filter of student processes (:mod:`autograder.grading.seccomp`), proven with real attempts.

A filter cannot be removed once loaded, so every check runs in a fresh Python
process that installs it (``confine()``, or the launcher's ``python -I -S -c``
form) and then tries what a submission would. A check prints ``OK`` as its
last line when all its expectations held.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.grading import seccomp
from autograder.grading.sandbox import resolve_folders
from conftest import ROOT

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux only"),
    pytest.mark.skipif(seccomp.available() is not None, reason=f"no seccomp here: {seccomp.available()}"),
]
x86_64 = pytest.mark.skipif(platform.machine() != "x86_64", reason="system call numbers and machine code of x86_64")

PREAMBLE = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from autograder.grading.seccomp import confine
confine()
"""

# Helpers the checks share: libc through ctypes, and "this call fails with that errno".
HELPERS = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def refused(rc, expected=errno.EPERM):
    got = ctypes.get_errno()
    assert rc == -1 and got == expected, (rc, errno.errorcode.get(got, got))
"""


def run_checks(code: str, *, confined: bool = True, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """Run ``code`` in a new Python process (filtered unless ``confined`` is false); it must end printing OK."""
    source = (PREAMBLE if confined else "") + HELPERS + textwrap.dedent(code) + "\nprint('OK')\n"
    proc = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=timeout, cwd="/", **kwargs
    )
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1:] == ["OK"], proc.stdout + proc.stderr
    return proc


def test_available_here():
    assert seccomp.available() is None


def test_policy_lists_every_refused_call():
    names = [name for name, _ in seccomp.POLICY]
    assert len(names) == len(set(names))
    assert {"socket", "socketpair", "unshare", "setns", "clone", "clone3", "memfd_create", "shmget"} <= set(names)
    assert all(isinstance(effect, str) and effect for _, effect in seccomp.POLICY)


def test_source_is_self_contained():
    """SOURCE runs in a bare namespace and leaves only its function behind (nothing of the project)."""
    namespace: dict[str, object] = {}
    exec(seccomp.SOURCE, namespace)
    assert sorted(name for name in namespace if name != "__builtins__") == ["_genai_hw_confine"]
    for line in seccomp.SOURCE.splitlines():
        if line.strip().startswith(("import ", "from ")):
            assert line.split()[1].split(".")[0] in {"ctypes", "errno", "os"}, line


def test_without_the_filter_the_same_calls_work():
    """The control: what the other tests see refused is refused by the filter, not by this machine."""
    run_checks(
        """
        import socket
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()
        os.close(os.memfd_create("x"))
        """,
        confined=False,
    )


def test_network_sockets_are_refused():
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        run_checks(
            f"""
            import socket
            for family in (socket.AF_INET, socket.AF_INET6, socket.AF_PACKET):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW):
                    try:
                        socket.socket(family, kind)
                    except PermissionError:
                        pass
                    else:
                        raise AssertionError(f"socket({{family!r}}, {{kind!r}}) was allowed")
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5)
            except PermissionError:
                pass
            else:
                raise AssertionError("connected to the test's server")
            # Upper bits of the domain are cut off by the kernel: they must not let AF_INET through.
            refused(libc.syscall(41, ctypes.c_long((1 << 32) | socket.AF_INET), socket.SOCK_STREAM, 0))
            refused(libc.syscall(53, socket.AF_INET, socket.SOCK_STREAM, 0, ctypes.byref((ctypes.c_int * 2)())))
            # Netlink is refused too, with the error libzmq copes with.
            refused(libc.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0), errno.EOPNOTSUPP)
            """
        )
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


def test_unix_sockets_and_socketpair_still_work(tmp_path: Path):
    path = tmp_path / "s"
    run_checks(
        f"""
        import socket
        a, b = socket.socketpair()
        a.sendall(b"ping")
        assert b.recv(4) == b"ping"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind({str(path)!r})
        server.listen()
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect({str(path)!r})
        peer, _ = server.accept()
        client.sendall(b"pong")
        assert peer.recv(4) == b"pong"
        x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        x.send(b"d")
        assert y.recv(1) == b"d"
        """
    )


def test_zmq_ipc_works_and_tcp_is_refused(tmp_path: Path):
    zmq = pytest.importorskip("zmq")
    del zmq
    endpoint = f"ipc://{tmp_path}/zmq.ipc"
    run_checks(
        f"""
        import zmq
        context = zmq.Context()
        server = context.socket(zmq.PAIR)
        server.bind({endpoint!r})
        client = context.socket(zmq.PAIR)
        client.connect({endpoint!r})
        client.send(b"ping")
        assert server.poll(5000) and server.recv() == b"ping"
        server.send(b"pong")
        assert client.poll(5000) and client.recv() == b"pong"
        tcp = context.socket(zmq.PUB)
        try:
            tcp.bind("tcp://127.0.0.1:*")
        except zmq.ZMQError as error:
            assert error.errno == errno.EPERM, error
        else:
            raise AssertionError("bound a tcp:// endpoint")
        for sock in (server, client, tcp):
            sock.close(linger=0)
        context.term()
        """
    )


@x86_64
def test_namespaces_are_refused():
    run_checks(
        """
        CLONE_NEWNET, CLONE_NEWUSER, CLONE_NEWNS = 0x40000000, 0x10000000, 0x00020000
        for flags in (CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUSER | CLONE_NEWNET):
            refused(libc.unshare(flags))
        fd = os.open("/proc/self/ns/net", os.O_RDONLY)
        refused(libc.setns(fd, 0))
        # clone(CLONE_NEWUSER | SIGCHLD): a child, had it been made, leaves at once.
        pid = libc.syscall(56, ctypes.c_ulong(CLONE_NEWUSER | 17), None, None, None, None)
        if pid == 0:
            os._exit(0)
        refused(pid)
        refused(libc.syscall(56, ctypes.c_ulong(CLONE_NEWNET | CLONE_NEWNS | 17), None, None, None, None))
        refused(libc.syscall(435, None, 0), errno.ENOSYS)  # clone3
        """
    )


def test_threads_fork_subprocess_and_torch_still_work():
    pytest.importorskip("torch")
    run_checks(
        """
        import subprocess, sys, threading
        results = []
        threads = [threading.Thread(target=results.append, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [0, 1, 2, 3]
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 7
        assert subprocess.run(["true"]).returncode == 0
        assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(2) as pool:  # POSIX semaphores and pipes
            assert pool.map(abs, [-1, -2]) == [1, 2]
        import torch
        torch.set_num_threads(2)
        assert torch.ones(3).sum().item() == 3
        a = torch.randn(256, 256)
        assert torch.allclose(a @ torch.eye(256), a)
        """
    )


@x86_64
def test_hidden_memory_and_kernel_mechanisms_are_refused():
    run_checks(
        """
        try:
            os.memfd_create("hidden")
        except PermissionError:
            pass
        else:
            raise AssertionError("memfd_create was allowed")
        IPC_PRIVATE, IPC_CREAT, IPC_RMID = 0, 0o1000, 0
        # Were one made, it is removed at once: System V objects outlive their process.
        for make, remove in (
            (lambda: libc.shmget(IPC_PRIVATE, 1 << 20, IPC_CREAT | 0o600), lambda i: libc.shmctl(i, IPC_RMID, None)),
            (lambda: libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600), lambda i: libc.msgctl(i, IPC_RMID, None)),
            (lambda: libc.semget(IPC_PRIVATE, 1, IPC_CREAT | 0o600), lambda i: libc.semctl(i, 0, IPC_RMID)),
        ):
            made = make()
            if made >= 0:
                remove(made)
            refused(made)
        queue = libc.mq_open(b"/genai-hw-test-seccomp", os.O_CREAT | os.O_RDWR, 0o600, None)
        if queue >= 0:
            libc.mq_unlink(b"/genai-hw-test-seccomp")
        refused(queue)
        # The rest, each called with zeros: without the filter these would succeed or fail otherwise.
        numbers = {
            "add_key": 248, "request_key": 249, "keyctl": 250, "bpf": 321, "perf_event_open": 298,
            "userfaultfd": 323, "io_uring_setup": 425, "ptrace": 101, "process_vm_readv": 310,
            "process_vm_writev": 311,
        }
        for name, number in numbers.items():
            rc = libc.syscall(number, 0, 0, 0, 0, 0, 0)
            assert rc == -1 and ctypes.get_errno() == errno.EPERM, (name, rc, ctypes.get_errno())
        """
    )


def test_threads_that_already_run_are_filtered_too():
    """confine() in a process with threads filters them all (TSYNC), not only the calling one."""
    code = """
    import socket, threading
    go, outcome = threading.Event(), []

    def attempt():
        go.wait()
        try:
            socket.socket().close()
            outcome.append("allowed")
        except PermissionError:
            outcome.append("refused")

    thread = threading.Thread(target=attempt)
    thread.start()
    sys.path.insert(0, ROOT)
    from autograder.grading.seccomp import confine
    confine()
    go.set()
    thread.join()
    assert outcome == ["refused"], outcome
    """
    run_checks(f"import sys\nROOT = {str(ROOT)!r}\n" + textwrap.dedent(code), confined=False)


def test_the_filter_survives_exec():
    run_checks(
        """
        import subprocess, sys
        check = "import socket\\ntry:\\n socket.socket()\\nexcept PermissionError:\\n print('refused')"
        proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
        assert proc.stdout == "refused\\n", proc
        assert subprocess.run(["sh", "-c", "grep -q '^Seccomp:.2' /proc/self/status"]).returncode == 0
        """
    )


# What the launcher execs into: it must find itself filtered.
CHECK = """
import socket
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
except PermissionError:
    pass
else:
    raise SystemExit("an AF_INET socket was allowed")
socket.socketpair()
status = open("/proc/self/status").read()
assert "\\nSeccomp:\\t2\\n" in status and "\\nNoNewPrivs:\\t1\\n" in status, status
print("confined")
"""


def launcher() -> list[str]:
    """The student launcher's form: isolated, no site, SOURCE inline, the filter installed right before exec."""
    code = (
        seccomp.SOURCE
        + "\n_genai_hw_confine()\nimport os, sys\n"
        + f"os.execv(sys.executable, [sys.executable, '-c', {CHECK!r}])\n"
    )
    # The Python as student users reach it (not through a private checkout's .venv link).
    return [resolve_folders(sys.executable), "-I", "-S", "-c", code]


def test_launcher_installs_the_filter_before_exec():
    proc = subprocess.run(launcher(), capture_output=True, text=True, timeout=30, cwd="/")
    assert proc.returncode == 0 and proc.stdout == "confined\n", proc.stdout + proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_launcher_installs_the_filter_as_an_unprivileged_user():
    """As a student's user: no privilege, so libseccomp's no-new-privileges is what lets the filter load."""
    nobody = 65534
    proc = subprocess.run(
        launcher(), capture_output=True, text=True, timeout=30, cwd="/", user=nobody, group=nobody, extra_groups=[]
    )
    assert proc.returncode == 0 and proc.stdout == "confined\n", proc.stdout + proc.stderr


@x86_64
def test_other_abis_are_killed():
    """int 0x80 (i386) and x32 numbers would bypass rules written for x86_64: the process dies instead."""
    code = """
    import mmap
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3]))  # mov eax, 20 (i386 getpid); int 0x80; ret
    getpid32 = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
    assert getpid32() == os.getpid()
    """
    run_checks(code, confined=False)
    source = PREAMBLE + HELPERS + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=30)
    assert proc.returncode == -signal.SIGSYS, proc
    x32 = PREAMBLE + HELPERS + "libc.syscall(0x40000000 | 39)\n"  # x32 getpid
    proc = subprocess.run([sys.executable, "-c", x32], capture_output=True, text=True, timeout=30)
    assert proc.returncode == -signal.SIGSYS, proc


def test_confine_says_why_when_libseccomp_is_missing(monkeypatch: pytest.MonkeyPatch):
    import ctypes
    import ctypes.util

    real = ctypes.CDLL

    def cdll(name, *args, **kwargs):
        if name and "seccomp" in str(name):
            raise OSError(f"{name}: cannot open shared object file")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    reason = seccomp.available()
    assert reason is not None and "libseccomp is not installed" in reason
    with pytest.raises(OSError, match="libseccomp"):
        seccomp.confine()
