"""What student code may ask of the kernel: a seccomp filter for its launcher.

:mod:`autograder.grading.sandbox` decides who student code runs as and where; this
module takes away what a user id cannot: the network, and a few kernel
mechanisms that would let a submission hide from the grader or outlive it.
The launcher of every student process (after it has dropped to the student's
user and set ``PR_SET_NO_NEW_PRIVS``, right before ``os.execv``) runs
:data:`SOURCE` and calls ``_genai_hw_confine()``. The filter then holds for
that process and everything it starts: seccomp filters survive ``fork`` and
``execve`` and can never be removed, only added to.

Every rule answers with an error number, never a kill, so a library that
probes for a mechanism sees an ordinary failure and goes on (glibc, for
one, falls back from ``clone3`` to ``clone`` when told ``ENOSYS``).
The one exception: a system call made through another ABI (``int 0x80``
for i386, or x32) kills its thread, libseccomp's default for a foreign
architecture, kept because the rules are written for the native ABI's
system call numbers. The filter is given to every thread of the process
(``TSYNC``), so :func:`confine` also holds where threads already run.
:data:`POLICY` lists what is refused:

- ``socket`` and ``socketpair`` for every domain but ``AF_UNIX``: no TCP, UDP,
  raw or netlink socket, hence no connection and no DNS over the network
  (names in ``/etc/hosts`` still resolve). ``AF_UNIX`` stays, as Jupyter's
  IPC transport and ``socketpair`` need it. Netlink gets ``EOPNOTSUPP``
  rather than ``EPERM``, the one error on which libzmq's interface lookup
  fails softly instead of aborting the process;
- new namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*`` flag,
  and ``clone3``, whose flags lie in memory a filter cannot read);
- memory the grader's watch does not see or that outlives the process
  (System V shared memory, message queues and semaphores, ``memfd_create``,
  POSIX message queues);
- the kernel keyring, ``bpf``, ``perf_event_open``, ``userfaultfd``,
  ``io_uring`` (which would run socket calls the filter never sees), and
  reading or writing other processes (``ptrace``, ``process_vm_readv`` and
  ``process_vm_writev``).

What it does not cover: ``AF_UNIX`` sockets in the abstract namespace (no
file, so no file permission stands in the way) can still be made and
reached, by any process of the same network namespace; memory in socket
buffers and pipes is not counted against the student; files in ``/dev/shm``
are ordinary files, left to the sandbox's users and permissions. Other
system calls are allowed: this is a list of refusals, not an allow-list.

The filter is built with ``libseccomp.so.2`` through :mod:`ctypes` (no
Python dependency; Ubuntu, and hence Gradescope's image, ships the library).
:data:`SOURCE` imports nothing but the standard library, so it can be
embedded into a ``python -I -S -c`` launcher that cannot import this
project. :func:`confine` runs it in the calling process; :func:`available`
says whether it could, without installing anything.
"""

from __future__ import annotations

import ctypes
import errno
import sys
from collections.abc import Callable

AF_UNIX = 1
AF_NETLINK = 16

# libseccomp's comparison operators (enum scmp_compare).
_CMP_NE = 1
_CMP_EQ = 4
_CMP_MASKED_EQ = 7

# Flags of clone(2) that make a new namespace.
_NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}

_Comparison = tuple[int, int, int, int]  # (argument index, operator, datum_a, datum_b): struct scmp_arg_cmp
_Rule = tuple[str, tuple[_Comparison, ...]]  # (error number's name, comparisons that must all hold; none: every call)


def _always(code: str) -> tuple[_Rule, ...]:
    return ((code, ()),)


# Socket families but AF_UNIX get EPERM. AF_NETLINK gets EOPNOTSUPP instead (libseccomp puts the equality test
# first, so it wins over the inequality): glibc's getifaddrs() uses a netlink socket, and libzmq aborts the whole
# process when getifaddrs() fails with any other error (binding a tcp:// endpoint would abort a Jupyter kernel
# instead of raising ZMQError).
_NOT_UNIX: tuple[_Rule, ...] = (("EPERM", ((0, _CMP_NE, AF_UNIX, 0),)),)
_NEW_NAMESPACE: tuple[_Rule, ...] = tuple(
    ("EPERM", ((0, _CMP_MASKED_EQ, flag, flag),)) for flag in _NAMESPACE_FLAGS.values()
)

# (system call, its rules, effect). A call is refused with a rule's error number when that rule matches.
_RULES: tuple[tuple[str, tuple[_Rule, ...], str], ...] = (
    (
        "socket",
        (*_NOT_UNIX, ("EOPNOTSUPP", ((0, _CMP_EQ, AF_NETLINK, 0),))),
        "EPERM unless the domain is AF_UNIX (EOPNOTSUPP for AF_NETLINK): no network",
    ),
    ("socketpair", _NOT_UNIX, "EPERM unless the domain is AF_UNIX"),
    ("unshare", _always("EPERM"), "EPERM: no new namespace"),
    ("setns", _always("EPERM"), "EPERM: no joining another namespace"),
    ("clone", _NEW_NAMESPACE, "EPERM with any CLONE_NEW* flag; threads and fork stay"),
    ("clone3", _always("ENOSYS"), "ENOSYS (its flags are out of the filter's reach): glibc falls back to clone"),
    ("shmget", _always("EPERM"), "EPERM: no System V shared memory"),
    ("msgget", _always("EPERM"), "EPERM: no System V message queue"),
    ("semget", _always("EPERM"), "EPERM: no System V semaphore"),
    ("memfd_create", _always("EPERM"), "EPERM: no anonymous memory file"),
    ("mq_open", _always("EPERM"), "EPERM: no POSIX message queue"),
    ("add_key", _always("EPERM"), "EPERM: no kernel keyring"),
    ("request_key", _always("EPERM"), "EPERM: no kernel keyring"),
    ("keyctl", _always("EPERM"), "EPERM: no kernel keyring"),
    ("bpf", _always("EPERM"), "EPERM: no BPF program or map"),
    ("perf_event_open", _always("EPERM"), "EPERM: no performance counters"),
    ("userfaultfd", _always("EPERM"), "EPERM: no user-handled page faults"),
    ("io_uring_setup", _always("EPERM"), "EPERM: no io_uring (its requests would pass this filter by)"),
    ("ptrace", _always("EPERM"), "EPERM: no tracing another process"),
    ("process_vm_readv", _always("EPERM"), "EPERM: no reading another process's memory"),
    ("process_vm_writev", _always("EPERM"), "EPERM: no writing another process's memory"),
)

POLICY: tuple[tuple[str, str], ...] = tuple((name, effect) for name, _, effect in _RULES)
"""(system call, what a student process gets when it makes it), for every call the filter refuses."""

_SOURCE_TEMPLATE = '''
def _genai_hw_confine(load=True):
    """Install the grader's seccomp filter in this process (kept across fork and exec); OSError if it cannot.

    With load=False the filter is built and thrown away: nothing is installed.
    """
    import ctypes
    import ctypes.util
    import errno
    import os

    rules = __RULES__

    class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
        _fields_ = [
            ("arg", ctypes.c_uint),
            ("op", ctypes.c_int),
            ("datum_a", ctypes.c_uint64),
            ("datum_b", ctypes.c_uint64),
        ]

    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as error:
        found = ctypes.util.find_library("seccomp")
        if found is None:
            raise OSError(errno.ENOENT, "seccomp filter: libseccomp is not installed (%s)" % error) from None
        try:
            lib = ctypes.CDLL(found, use_errno=True)
        except OSError as again:
            raise OSError(errno.ENOENT, "seccomp filter: cannot load %s (%s)" % (found, again)) from None

    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_attr_set.restype = ctypes.c_int
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(ArgCmp)
    ]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_load.restype = ctypes.c_int
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.restype = None

    def check(rc, what):
        if rc < 0:
            raise OSError(-rc, "seccomp filter: %s failed: %s" % (what, os.strerror(-rc)))

    # Default action: allow. The bad-architecture action stays libseccomp's default (kill): a system call made
    # through another ABI (int 0x80 for i386, or x32) is not checked by these rules, so it must not run at all.
    # No-new-privileges stays on (libseccomp's default), as an unprivileged process needs it to load a filter.
    ctx = lib.seccomp_init(0x7FFF0000)  # SCMP_ACT_ALLOW
    if not ctx:
        raise OSError(errno.ENOMEM, "seccomp filter: seccomp_init failed")
    try:
        # Every thread of the process gets the filter, not only the calling one (SCMP_FLTATR_CTL_TSYNC).
        check(lib.seccomp_attr_set(ctx, 4, 1), "setting SCMP_FLTATR_CTL_TSYNC")
        for name, alternatives, _ in rules:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:  # not a system call on this architecture
                continue
            for code, comparisons in alternatives:
                action = 0x00050000 | (getattr(errno, code) & 0xFFFF)  # SCMP_ACT_ERRNO(code)
                array = (ArgCmp * len(comparisons))(*[ArgCmp(*c) for c in comparisons]) if comparisons else None
                check(
                    lib.seccomp_rule_add_array(ctx, action, number, len(comparisons), array),
                    "the rule for %s" % name,
                )
        if load:
            check(lib.seccomp_load(ctx), "seccomp_load")
    finally:
        lib.seccomp_release(ctx)
'''

SOURCE: str = _SOURCE_TEMPLATE.replace("__RULES__", repr(_RULES))
"""Python source (standard library only) that defines ``_genai_hw_confine()``, for a launcher that cannot import us."""


def _confine_function() -> Callable[..., None]:
    namespace: dict[str, object] = {"__name__": "_genai_hw_seccomp"}
    exec(compile(SOURCE, "<autograder.grading.seccomp.SOURCE>", "exec"), namespace)
    return namespace["_genai_hw_confine"]  # type: ignore[return-value]


def confine() -> None:
    """Install the filter in this process and everything it starts from now on; ``OSError`` if it cannot.

    Irreversible: only for a process that runs student code (or a test's throwaway one).
    """
    _confine_function()()


def available() -> str | None:
    """``None`` where :func:`confine` can install the filter, else why not.

    Loads libseccomp and builds the whole filter, but loads nothing into this process.
    """
    if not sys.platform.startswith("linux"):
        return f"seccomp is Linux only (this is {sys.platform})"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(21, 0, 0, 0, 0) < 0:  # PR_GET_SECCOMP: EINVAL where the kernel has no seccomp
        return f"the kernel has no seccomp: {errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())}"
    try:
        _confine_function()(load=False)
    except OSError as error:
        return str(error)
    return None
