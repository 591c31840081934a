"""The trusted side of hidden-test grading.

:class:`GradingSession` (and :func:`grade_cases`, all its phases in one go)
makes each case's inputs from the run's seed, runs the reference package in
a process of its own (:class:`ReferenceProcess`) and the submitted package
in a separate isolated one (:mod:`autograder.grading.runner` both), and compares.
Submitted code never runs in this process, and what both return arrives as
plain data (:mod:`autograder.grading.wire`) over pipes whose lines are signed with a
per-run key. This process never imports torch, gensim or the reference: a
tensor is a :class:`wire.Tensor` here (dtype, device, numpy values).

Code in the runner can find that key and sign whatever it likes, so nothing
that decides a grade rests on what the runner says about itself. The
grader sends each call's input only when the call starts, one request at a
time, and times it on its own clock from the request to the outcome; a
correct result needs the value that came back (compared here with the
reference's); every line is bounded before it is read, and what is kept of
the outcomes is bounded too.

One check cannot be made here: whether the function changed its arguments,
which only the runner's process sees. The runner writes each positional
argument as plain data before and after the call and reports those that
differ (``mutated``). That catches honest code that changes its inputs in
place; it does not prove the inputs were left alone, since code in the
runner can forge the report. What this process does check: a case with
``check_mutation`` fails a call whose outcome lacks a well-formed report
(a list of distinct argument positions), so a runner that says nothing
never passes it.

A call that raises, hangs or kills its process costs that case only: the
runner is restarted after the case that broke it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import pkgutil
import queue
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import cases as cases_module
from . import timeline, wire
from .cases import Call, Case, short
from .sandbox import (
    MEMORY_MIB,
    PACKAGE_LIMIT,
    STARTUP_MIB,
    Sandbox,
    copy_tree,
    data_allowance_mib,
    gpu_visible,
)

REFERENCE_NAME = "genai_hw_reference"
CALL_GRACE = 2.0
"""Seconds past a call's timeout, on the grader's clock from its request to its outcome, before its process is
killed (a loop that ignores the alarm); it also covers the runner's work around the call (inputs, outcome)."""
READY_TIMEOUT = 60.0
"""Seconds the runner may take to start and import the submitted package."""
MAX_LINE_BYTES = 2**20
"""The longest line the grader reads from a runner: 27 times the longest that the reference sends over the five
homeworks' hidden cases (38,136 bytes, an outcome of hw04's; graded with seeds 0 to 2). A longer line stops
the runner and costs the case in progress."""
VALUE_LIMIT = MAX_LINE_BYTES // 4
"""The most JSON the runner writes for a returned value, and for a training step's models: a larger one comes
back as "output over 256 KB" (a failure), so that an outcome line that is not hostile always fits."""
KEPT_LIMIT_BYTES = 16 * 2**20
"""The most memory that a runner's outcomes may take in the grader, all cases together, counted as parsed
objects (:func:`_footprint`); the reference's take 0.87 MB at most (hw02's). A case whose outcomes would go past
it fails, and they are dropped."""
QUEUED_LINES = 4
"""Lines a runner's reader may read ahead of the grader: a runner that floods its output then waits on its pipe,
and this process holds at most this many lines (of MAX_LINE_BYTES) for it."""
OUT_OF_TIME = (f"not run: grading your package ran out of time (all cases together may take "
               f"{PACKAGE_LIMIT:.0f} s; earlier cases hung or were slow)")
TOO_LONG = (f"the Python process running your code sent more than {MAX_LINE_BYTES // 2**20} MB for one result "
            "(it was stopped)")
TOO_MUCH_KEPT = (f"your function's results took more than the grader keeps ({KEPT_LIMIT_BYTES // 2**20} MB of its "
                 "memory for all cases together; the reference's take less than 1 MB)")
PACKAGE_MISSING = (
    "Your upload has no genai_hw/ folder, so none of your functions could be graded. "
    "Upload the zip that the notebook's last cell makes (it holds the notebook and genai_hw/), "
    "not the notebook alone."
)


@dataclass
class CaseResult:
    case: Case
    passed: bool
    message: str
    inputs: int = 0
    """How many calls the case made (0: it failed before any input was judged)."""
    fixed: int = 0
    """How many of those calls were edge cases (the same input at every grading)."""

    @property
    def kind(self) -> str:
        if not self.inputs:
            return "other"
        return "edge" if self.fixed == self.inputs else "random" if self.fixed == 0 else "mixed"


KINDS = {
    "edge": "Edge cases (the same inputs at every grading; expected values not shown)",
    "random": "Random inputs (new at every grading, made from the seed)",
    "mixed": "Edge cases and random inputs",
    "other": "Not run",
}


def _last_line(message: str) -> str:
    """The line of a notebook check's failure that says what went wrong (its exception), shortened."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "failed")[:300]


def question_report(question: str, results: list[CaseResult], seed: int | None,
                    public: list[tuple[bool, str, str]] | None = None) -> str:
    """What a student reads for one package question: how many hidden cases ran and passed, by kind, with the
    seed, each case's message; then the notebook's public checks (``(passed, name, message)``, 0 points)."""
    got = sum(r.case.points for r in results if r.passed)
    possible = sum(r.case.points for r in results)
    passed = sum(r.passed for r in results)
    inputs = sum(r.inputs for r in results)
    where = f", seed {seed}" if seed is not None else ""
    lines = [f"{question}: {passed} of {len(results)} hidden cases passed ({inputs} inputs{where}), "
             f"{got:g} of {possible:g} points."]
    for kind, title in KINDS.items():
        group = [r for r in results if r.kind == kind]
        if group:
            lines.append(f"{title}: {sum(r.passed for r in group)} of {len(group)} passed")
            lines += [f"  passed: {r.case.what} ({r.inputs} inputs)" if r.passed else f"  FAILED: {r.message}"
                      for r in group]
    if public:
        lines.append(f"Notebook checks (public, 0 points): {sum(p for p, _, _ in public)} of {len(public)} passed")
        lines += [f"  FAILED {name}: {_last_line(message)}" for ok, name, message in public if not ok]
    return "\n".join(lines)


def case_seed(seed: int, case: Case) -> np.random.Generator:
    """The Generator that makes a case's inputs: replay a run with its seed."""
    return np.random.default_rng([seed, zlib.crc32(f"{case.question}/{case.name}".encode())])


def libraries_of(package_dir: Path) -> list[str]:
    """The libraries a package imports at the top of its modules (not the standard library, not itself):
    ``["numpy", "torch"]``. The runner and the kernel load them before any student code runs, and what
    they hold then is not counted against the memory limit (sandbox.MEMORY_MIB)."""
    import ast

    found: set[str] = set()
    for path in sorted(Path(package_dir).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
    own = {"genai_hw", "__future__", REFERENCE_NAME}
    return sorted(name for name in found if name not in sys.stdlib_module_names and name not in own)


def load_reference(package_dir: Path) -> types.ModuleType:
    """Import the reference package at ``package_dir`` as ``genai_hw_reference``.

    Every submodule is imported now, so the files may be deleted afterwards.
    """
    for name in [n for n in sys.modules if n == REFERENCE_NAME or n.startswith(REFERENCE_NAME + ".")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        REFERENCE_NAME, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[REFERENCE_NAME] = package
    spec.loader.exec_module(package)
    for info in pkgutil.iter_modules([str(package_dir)]):
        importlib.import_module(f"{REFERENCE_NAME}.{info.name}")
    return package


class GraderError(RuntimeError):
    """The reference's side of a case failed: a grader bug, never the student's."""


REFERENCE_SLACK = 3
"""The reference's calls may take this many times a case's timeout (it shares the CPU with the runner)."""


def _expected(record: dict[str, Any] | None, count: int) -> list[dict[str, Any]]:
    """The expected outcome of each of a case's ``count`` calls, from the reference process's record:
    ``{"status": "ok", "value": ..., "state": ...}`` or ``{"status": "raised", "types": [...]}``."""
    if not record:
        raise GraderError("no outcome came back")
    if "broken" in record:
        raise GraderError(record["broken"])
    if record.get("import_error"):
        raise GraderError(f"import failed: {record['import_error']}")
    outcomes = record.get("calls") or []
    if len(outcomes) != count:
        raise GraderError(f"{len(outcomes)} outcomes for {count} calls")
    expected = []
    for outcome in outcomes:
        status = outcome.get("status")
        if status == "ok":
            one = {"status": "ok", "value": wire.decode(outcome.get("value"))}
            if "state" in outcome:
                one["state"] = wire.decode(outcome["state"])
            expected.append(one)
        elif status == "raised":
            expected.append({"status": "raised", "types": [str(t) for t in outcome.get("types") or ["Exception"]]})
        else:
            raise GraderError(f"a call ended with {status!r} {str(outcome.get('message', ''))[:200]}")
    return expected


class StudentProcess:
    """Runs the cases of a job in isolated runner processes (see :mod:`autograder.grading.runner`), one call at a time.

    The submitted package is snapshotted into the sandbox's read-only
    ``pkg/`` folder when this object is made (before any student code runs);
    every runner, a restarted one included, imports that snapshot.
    :meth:`start` launches a runner as the sandbox's package user and returns
    once it is ``ready`` (the submitted package imported). :meth:`pump` then
    sends the pending cases' calls as requests, each once the previous call's
    outcome has come back (so no input reaches the runner before its call),
    and makes each case's record from the outcomes of its calls. A call's
    time runs on this process's clock from its request to its outcome: past
    its timeout plus ``CALL_GRACE`` every process of the package user is
    killed, the case fails, and with ``restart`` a new runner takes the
    remaining cases, so a broken case costs only itself. Nothing the runner
    writes lengthens a call, and nothing runs past ``deadline``
    (``time.monotonic()``).

    What comes back is bounded before it is looked at: lines of at most
    ``MAX_LINE_BYTES`` (a longer one stops the runner and costs the case in
    progress), a signature checked before any parsing, a short queue (a
    runner that floods its output waits on its pipe) and at most
    ``KEPT_LIMIT_BYTES`` of outcomes kept: this process's memory does not
    depend on what the submission sends.
    """

    role = "student"

    def __init__(self, package_dir: Path, jobs: list[dict[str, Any]], sandbox: Sandbox,
                 data_dir: Path | None = None, forbid_gensim: bool = False,
                 preload: list[Any] | None = None, deadline: float | None = None,
                 stack: list[str] | None = None) -> None:
        self.sandbox = sandbox
        self.python = sandbox.python
        self.forbid_gensim = forbid_gensim
        self.preload = preload or []
        self.stack = list(stack or [])
        self._baseline_open = False
        self.pending = list(jobs)
        self.records: dict[int, dict[str, Any]] = {}
        self.kept = 0
        """Bytes that the kept outcomes take in this process (:func:`_footprint`), all runners together."""
        self.proc: subprocess.Popen | None = None
        self.ready = False
        self.launched = 0.0
        self.lines: queue.Queue = queue.Queue(QUEUED_LINES)
        self.stopped = threading.Event()
        self.key = b""
        self.deadline = deadline if deadline is not None else time.monotonic() + PACKAGE_LIMIT
        self.root = self._folder()
        self.notes = copy_tree(package_dir, self.root / "genai_hw", skip=("__pycache__",))
        here = Path(__file__).resolve().parent
        shutil.copy(here / "runner.py", self.root / "genai_hw_runner.py")
        shutil.copy(here / "wire.py", self.root / "genai_hw_wire.py")
        self.data_dir = None
        if data_dir is not None and Path(data_dir).is_dir():
            self.data_dir = self._data(Path(data_dir))
        self._seal()

    def _folder(self) -> Path:
        return self.sandbox.pkg

    def _data(self, data_dir: Path) -> Path:
        copy_tree(data_dir, self.root / "data")
        return self.root / "data"

    def _seal(self) -> None:
        self.sandbox.seal(self.root)

    def _kill_all(self) -> None:
        self.sandbox.kill("package")

    def _stop(self) -> None:
        """End the runner and everything it started (detached processes included)."""
        if self.proc is not None:
            self.stopped.set()  # its reader hands over nothing more
            _kill_group(self.proc)
            self.proc = None
        self._kill_all()

    def close(self) -> None:
        """End the runner and everything it started, for good."""
        self._stop()

    def _exited(self) -> None:
        """Give a runner whose output ended a moment to exit (one that closed its pipe and lives on is stopped
        by the caller)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=1.0)

    def _ended_why(self) -> str:
        """Why the runner's output ended during a case: over its memory limit (the watch or the OOM killer ended
        it), or on its own."""
        over = self._over_memory()
        if over:
            return f"{self.sandbox.watch.message('package')}; it was stopped at {over:.0f} MiB"
        if self.proc.returncode is None:
            return "the Python process running your code closed its output during this case"
        return f"the Python process running your code ended during this case (exit code {self.proc.returncode})"

    def _over_memory(self) -> float | None:
        self.sandbox.watch.sample()  # an OOM kill just now is counted before the reason is given
        return self.sandbox.watch.over.pop("package", None)

    def _data_mib(self) -> int | None:
        return data_allowance_mib("package")

    def _baseline(self, kib: Any) -> None:
        """A new runner's memory before any student code ran (None: it is starting). Only its first report,
        sent before it imports the package, is taken."""
        if kib is None:
            self._baseline_open = True
            self.sandbox.watch.set_baseline("package", None)
        elif self._baseline_open and isinstance(kib, int) and 0 <= kib <= STARTUP_MIB * 1024:
            self._baseline_open = False
            self.sandbox.watch.set_baseline("package", kib / 1024)

    def _env(self) -> dict[str, str]:
        return self.sandbox.env("package", {
            "GENAI_HW_DEVICE": "auto" if gpu_visible() else "cpu",  # the GPU where torch sees one
            "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # deterministic cuBLAS (runner._deterministic_cuda)
            "GENAI_HW_DATA_DIR": str(self.data_dir or ""),
        })

    def _launch(self) -> subprocess.Popen:
        command = [self.python, "-I", str(self.root / "genai_hw_runner.py"), str(self.root)]
        kwargs = self.sandbox.popen_kwargs("package", env=self._env())
        forked = self.sandbox.spawn("package", command, kwargs["env"], kwargs["cwd"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if forked is not None:
            return forked
        return subprocess.Popen(self.sandbox.command("package", command), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, **kwargs)

    def launch(self) -> None:
        """Start a runner for the pending cases and send it their header, without waiting for it."""
        self.key = secrets.token_bytes(32)
        self.lines = queue.Queue(QUEUED_LINES)
        self.stopped = threading.Event()
        self.ready = False
        self._baseline(None)  # the new runner loads its libraries: the watch allows for it from now on
        self._kill_all()  # nothing of an earlier runner survives into this one
        self.launched = time.monotonic()
        self.proc = self._launch()
        timeline.mark(f"{self.role}.launched")
        os.set_blocking(self.proc.stdin.fileno(), False)  # written by _send, which never waits past a limit
        threading.Thread(target=_read_lines, args=(self.proc.stdout, self.key, self.lines, self.stopped),
                         daemon=True).start()
        # The cases without their inputs: each input is sent with its call (no code in the runner can work
        # on a later call in the background).
        cases = [{name: value for name, value in job.items() if name != "calls"} for job in self.pending]
        header = {"key": self.key.hex(), "cases": cases, "forbid_gensim": self.forbid_gensim,
                  "preload": [wire.encode(r) for r in self.preload], "role": self.role, "stack": self.stack,
                  "data_mib": self._data_mib(), "value_limit": VALUE_LIMIT}
        self._send(json.dumps(header).encode("utf-8") + b"\n", min(self.launched + READY_TIMEOUT, self.deadline))

    def start(self, ready_timeout: float = READY_TIMEOUT) -> None:
        """Launch a runner for the pending cases; return when it is ready (or given up on: every pending case
        then has its record)."""
        self.launch()
        self._await_ready(ready_timeout)

    def _await_ready(self, ready_timeout: float = READY_TIMEOUT) -> None:
        reason = self._not_ready(ready_timeout)
        if reason is None:
            self.ready = True
            return
        self._stop()
        self._fail_pending(reason)

    def _not_ready(self, ready_timeout: float) -> str | None:
        """Wait for the launched runner's ``ready`` (taking its baseline report on the way); None once it is
        ready, else why it never was (it ended, hung, or sent a line too long)."""
        until = min(self.launched + ready_timeout, self.deadline)
        while (left := until - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:  # it ended at interpreter start, or importing the package
                self._exited()
                if self._over_memory():
                    return "importing your genai_hw package " + self.sandbox.watch.message("package")
                return "the Python process running your code could not start"
            if line is LINE_TOO_LONG:
                return f"{TOO_LONG} while importing your genai_hw package"
            if self._setup_event(_parse(line)) == "ready":
                self._baseline_open = False  # no baseline once student code has run
                timeline.mark(f"{self.role}.ready")
                return None
        if time.monotonic() >= self.deadline:
            return OUT_OF_TIME
        return f"importing your genai_hw package did not finish within {ready_timeout:.0f} s"

    def _setup_event(self, message: Any) -> Any:
        """The event a runner's message names before it is ready, taking a ``baseline`` report on the way."""
        if not isinstance(message, dict):
            return None
        if message.get("event") == "baseline":
            timeline.mark(f"{self.role}.libraries")
            self._baseline(message.get("kib"))
        return message.get("event")

    def _fail_pending(self, reason: str) -> None:
        for job in self.pending:
            self.records[job["index"]] = {"broken": reason}
        self.pending = []

    def pump(self, restart: bool = True) -> None:
        """Run the pending cases until each has a record; without ``restart``, only until the runner is
        given up on."""
        while self.pending:
            if time.monotonic() >= self.deadline:
                self._stop()
                self._fail_pending(OUT_OF_TIME)
            elif self.proc is None:
                if not restart:
                    return
                self.start()
            elif not self.ready:  # launched without waiting (the reference's)
                self._await_ready()
            else:
                job = self.pending.pop(0)
                self.records[job["index"]] = self._run_case(job)
                if not self.pending:
                    timeline.mark(f"{self.role}.cases")

    def _run_case(self, job: dict[str, Any]) -> dict[str, Any]:
        """A case's record, made here from the outcomes of its calls: ``{"calls": [...]}`` (up to the first
        that timed out), ``{"import_error": ...}`` (the runner could not import the function) or
        ``{"broken": why}`` (the runner was given up on, or the outcomes took too much memory)."""
        outcomes, size = [], 0
        for number in range(len(job["calls"])):
            outcome = self._call(job, number)
            if isinstance(outcome, str):
                return {"broken": outcome}
            if outcome.get("import_error"):
                return {"import_error": outcome["import_error"]}
            size += _footprint(outcome)
            if self.kept + size > KEPT_LIMIT_BYTES:  # this case's outcomes are dropped: the next cases may fit
                return {"broken": TOO_MUCH_KEPT}
            outcomes.append(outcome)
            if outcome.get("status") == "timeout":
                break  # the case has failed; do not spend more time on it
        self.kept += size
        return {"calls": outcomes}

    def _call(self, job: dict[str, Any], number: int) -> dict[str, Any] | str:
        """Send call ``number`` of ``job`` and wait for its outcome, on this process's clock: the outcome, or why
        the runner was given up on (it is stopped then). Lines that are not this call's outcome are ignored."""
        index, budget = job["index"], job["timeout"] + CALL_GRACE
        until = min(time.monotonic() + budget, self.deadline)
        request = {"case": index, "call": number, **job["calls"][number]}
        self._send(json.dumps(request).encode("utf-8") + b"\n", until)
        while (left := until - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:  # its output ended: the process ended (or closed its pipe)
                self._exited()
                reason = self._ended_why()
                self._stop()
                return reason
            if line is LINE_TOO_LONG:
                self._stop()
                return TOO_LONG
            outcome = _outcome(line, index, number)
            if outcome is not None:
                return outcome
        self._stop()
        if time.monotonic() >= self.deadline:
            return OUT_OF_TIME
        return f"did not finish within {budget:.0f} s (an infinite loop?)"

    def _send(self, data: bytes, until: float) -> None:
        """Write ``data`` to the runner's stdin, waiting for the pipe at most until ``until``: a runner that stops
        reading cannot hold the grader (its call then runs out of time). One that has gone is left alone: the
        end of its output says why."""
        fd = self.proc.stdin.fileno()
        ready = select.poll()
        ready.register(fd, select.POLLOUT)
        unsent = memoryview(data)
        while unsent and (left := until - time.monotonic()) > 0:
            if not ready.poll(left * 1000):
                return
            try:
                unsent = unsent[os.write(fd, unsent):]
            except BlockingIOError:
                continue
            except OSError:  # BrokenPipeError: the runner has gone
                return


LINE_TOO_LONG = object()
"""What a runner's reader hands over for a line longer than MAX_LINE_BYTES (it reads no further)."""


def _read_lines(stream: Any, key: bytes, lines: queue.Queue, stopped: threading.Event) -> None:
    """The reader of one runner's output (a thread): hands the JSON text of every line signed with ``key`` to
    ``lines``, then None at the end of the output. It reads at most MAX_LINE_BYTES of a line: a longer one is
    :data:`LINE_TOO_LONG`, and the end. It never parses, so nothing the runner sends can end it early, and
    it waits on a full queue only until the runner is stopped."""
    try:
        while not stopped.is_set():
            line = stream.readline(MAX_LINE_BYTES + 1)
            if not line.endswith(b"\n"):  # the end of the output (a last line cut short included), or too long
                if len(line) > MAX_LINE_BYTES:
                    _hand_over(lines, LINE_TOO_LONG, stopped)
                break
            text, _, mac = line[:-1].rpartition(b"\t")
            if hmac.compare_digest(mac, hmac.new(key, text, hashlib.sha256).hexdigest().encode("ascii")):
                _hand_over(lines, text, stopped)
    except (OSError, ValueError):  # the pipe was closed under us: the runner was stopped
        pass
    finally:
        _hand_over(lines, None, stopped)
        with contextlib.suppress(OSError):
            stream.close()


def _hand_over(lines: queue.Queue, item: Any, stopped: threading.Event) -> None:
    """Put ``item`` on ``lines``, waiting while the queue is full (the runner then waits on its pipe), but not
    past the runner's stop: nothing is handed over then."""
    while not stopped.is_set():
        try:
            lines.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _parse(text: bytes) -> Any:
    """A signed line's JSON, or None where this process cannot read it (nested too deep, not UTF-8, ...)."""
    try:
        return json.loads(text)
    except Exception:  # noqa: BLE001 - RecursionError included: a bad line costs only the call that waits on it
        return None


def _outcome(line: bytes, case: int, number: int) -> dict[str, Any] | None:
    """The outcome of call ``number`` of ``case`` that a signed line holds, or None: the line is something else,
    dropped at once (a flood of lines never has more than one parsed at a time)."""
    message = _parse(line)
    if (isinstance(message, dict) and message.get("event") == "outcome"
            and message.get("case") == case and message.get("call") == number):
        return message
    return None


def _footprint(data: Any) -> int:
    """Bytes that parsed JSON takes in this process: every dict, list, string and number in it (a line of
    ``[{},{},...]`` takes 20 times its length)."""
    total, todo = 0, [data]
    while todo:
        item = todo.pop()
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            todo += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            todo += item
    return total


class ReferenceProcess(StudentProcess):
    """Computes the expected outcomes: the same runner, on the reference package, as the grader's own user.

    The grader's process never imports the reference (or torch): it compares plain data. The reference's
    copy lives in a private folder of the sandbox (``0700``, the grader's) that no student user can read,
    removed by :meth:`close` (or with the sandbox, if the grading is interrupted); the process runs on the
    CPU, without the sandbox's limits, outside the student roles (killing a role never touches it; clearing
    the sandbox does).
    """

    role = "reference"

    def _folder(self) -> Path:
        return self.sandbox.private_folder(f"reference-{secrets.token_hex(4)}")

    def _data(self, data_dir: Path) -> Path:
        return data_dir  # the grader's own data, read where it is

    def _seal(self) -> None:
        pass

    def _kill_all(self) -> None:
        pass

    def _over_memory(self) -> float | None:
        return None

    def _data_mib(self) -> int | None:
        return None

    def _baseline(self, kib: Any) -> None:
        pass

    def _ended_why(self) -> str:
        return f"the reference's process ended (exit code {self.proc.returncode})"

    def _env(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in ("PATH", "LANG", "OPENBLAS_CORETYPE") if name in os.environ}
        env.update({"HOME": str(self.root), "TMPDIR": str(self.root), "PYTHONHASHSEED": "0",
                    "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1", "GENAI_HW_DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": "",
                    "GENAI_HW_DATA_DIR": str(self.data_dir or "")})
        return env

    def _launch(self) -> subprocess.Popen:
        command = [self.python, "-I", str(self.root / "genai_hw_runner.py"), str(self.root)]
        proc = self.sandbox.spawn(None, command, self._env(), str(self.root), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if proc is None:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, cwd=str(self.root), env=self._env(),
                                    start_new_session=True)
        self.sandbox.adopt(proc)  # killed with the student processes if the grading is interrupted
        return proc

    def close(self) -> None:
        """End the process and remove the reference's copy (a restart after a broken case reuses it until then)."""
        self._stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if proc.stdin is not None:  # its stdout belongs to its reader, which closes it at the end
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _judge(case: Case, one: Call, expected: dict[str, Any], got: dict[str, Any], fixed: bool = False) -> str | None:
    """None when the submitted call's outcome matches the reference, else a message.

    ``fixed``: the call's input is the same at every grading run (an edge
    case). Its message then shows the input and what came back, never the
    expected outcome, so a table of answers learned from failure messages
    gains nothing.
    """
    on = _OnInput(one)
    status = got.get("status")
    if status == "timeout":
        return f"{on}: did not finish within {case.timeout:g} s (an infinite loop?)"
    if status == "setup_error":
        return f"{on}: internal grader error preparing the inputs ({got.get('message')}); please tell your instructor"
    if status == "raised":
        names = got.get("types") or ["Exception"]
        if expected["status"] == "raised" and expected["types"][0] in names:
            return None
        if "MemoryError" in names:
            return (f"{on}: used more than {MEMORY_MIB['package']} MiB of memory (MemoryError: one process of "
                    f"your package may allocate {data_allowance_mib('package')} MiB beyond what Python and "
                    "the homework's libraries hold before your code runs)")
        if "OutOfMemoryError" in names:  # torch's, on a GPU grader: the runner empties the cache after it
            return f"{on}: ran out of GPU memory (torch.OutOfMemoryError: {str(got.get('message', ''))[:200]})"
        where = f" ({got['where']})" if got.get("where") else ""
        if expected["status"] == "raised" and not fixed:
            return f"{on}: expected {expected['types'][0]} to be raised, got {names[0]}: {got.get('message', '')}"
        return f"{on}: your function raised {names[0]}: {got.get('message', '')}{where}"
    if status != "ok":
        return f"{on}: no result came back"
    if expected["status"] == "raised":
        returned = short(_safe_decode(got.get("value")))
        if fixed:
            return f"{on}: your function returned {returned}, which is not the right outcome for this input"
        return f"{on}: expected {expected['types'][0]} to be raised, but it returned {returned}"
    try:
        value = wire.decode(got.get("value"))
    except wire.WireError as err:
        return f"{on}: the returned value could not be read ({err})"
    problem = case.compare(expected["value"], value)
    if problem:
        if fixed:
            return (f"{on}: your function returned {short(value)}, which is not right for this input "
                    "(edge cases do not show the expected value)")
        return f"{on}: {problem}"
    if case.check_mutation:
        mutated = got.get("mutated")
        if not _well_formed(mutated, len(one.args)):
            return f"{on}: the runner's report for this call was incomplete (which arguments changed)"
        if mutated:
            return f"{on}: your function changed its argument(s) {mutated}; it must not modify its inputs"
    if "state" in expected:  # a training step: the models must end where the reference's end
        try:
            state = wire.decode(got.get("state"))
        except wire.WireError as err:
            return f"{on}: the models' parameters after the call could not be read ({err})"
        if not isinstance(state, dict):
            return f"{on}: the models' parameters after the call could not be read"
        for name, params in expected["state"].items():
            problem = case.compare(params, state.get(name))
            if problem:
                return f"{on}: after the call the {name}'s parameters are not where they should be ({problem})"
    return None


class _OnInput:
    """``on input (...)`` in a message: the call is described only when a message is made (a repr of
    every input of every passing call was a tenth of a second of a homework 2 grading)."""

    def __init__(self, one: Call) -> None:
        self.one = one

    def __format__(self, spec: str) -> str:
        return f"on input {self.one.describe()}"


def _well_formed(mutated: Any, arguments: int) -> bool:
    """Whether a runner's ``mutated`` report can be one: distinct positions among the call's ``arguments``."""
    return (type(mutated) is list and all(type(i) is int and 0 <= i < arguments for i in mutated)
            and len(set(mutated)) == len(mutated))


def _safe_decode(data: Any) -> Any:
    try:
        return wire.decode(data)
    except wire.WireError:
        return "<unreadable>"


OPENBLAS_SET_THREADS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")
"""The thread-count setters of the OpenBLAS builds numpy ships (``scipy-openblas64`` since numpy 2) and others."""


def single_blas_thread() -> bool:
    """Make the OpenBLAS already loaded in this process compute on one thread; True where it did.

    The grader's process imports numpy with Otter, before any of this package runs, so
    ``OPENBLAS_NUM_THREADS`` (set for every process the grading starts) comes too late for it: OpenBLAS
    starts a thread per CPU the machine shows, and they spin between the hidden cases' matrix products
    (0.15 s of CPU in a homework 2 grading on 2 cores, one such thread; a container that shows the host's
    CPUs but may use half of one has many more).
    """
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = sorted({line.split(None, 5)[-1].strip() for line in maps
                            if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return False
    done = False
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in OPENBLAS_SET_THREADS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter(1)
                done = True
                break
    return done


def _fixed_calls(case: Case, seed: int, calls: list[Call]) -> list[bool]:
    """Which calls have the same input whatever the seed (edge cases): made again from another seed."""
    try:
        other = case.inputs(case_seed(seed ^ 0x5EED, case))
    except Exception:  # noqa: BLE001 - treat every call as fixed: it only hides expected values
        return [True] * len(calls)
    if len(other) != len(calls):
        return [True] * len(calls)
    return [wire.dumps(a.args) == wire.dumps(b.args) and wire.dumps(a.kwargs) == wire.dumps(b.kwargs)
            for a, b in zip(calls, other)]


class GradingSession:
    """One grading of a submission's package, in phases.

    1. :meth:`start`: makes every case's inputs from the seed, launches the
       reference's process (:class:`ReferenceProcess`) and starts sending it
       the calls (in a thread), snapshots the submitted package and launches
       the isolated runner on it as the sandbox's package user; returns once
       the runner has imported the package.
    2. :meth:`work`: runs the student's calls and waits for the reference's;
       a runner that breaks is restarted (from the same read-only snapshot)
       for the remaining cases.
    3. :meth:`finish`: waits for what is left, ends both processes,
       compares, and returns one :class:`CaseResult` per case. Judging a case
       never raises: whatever goes wrong costs that case alone.

    ``reference``: the reference ``genai_hw`` folder (copied when the session
    starts; the caller may delete it then). This process only makes inputs
    and compares plain data: it never imports the reference, torch or gensim.
    ``sandbox``: where student code runs (see :mod:`autograder.grading.sandbox`); by
    default the session makes its own and closes it in :meth:`finish`.
    """

    def __init__(self, cases: list[Case], package_dir: Path | None, reference: Path, seed: int,
                 python: str = sys.executable, data_dir: Path | None = None, sandbox: Sandbox | None = None,
                 limit: float = PACKAGE_LIMIT) -> None:
        self.cases, self.reference, self.seed, self.python = cases, Path(reference), seed, python
        self.package_dir = (package_dir if package_dir is not None and package_dir.is_dir()
                            and not package_dir.is_symlink() else None)
        self.data_dir = Path(data_dir).resolve() if data_dir is not None else None
        if self.data_dir is not None:  # hidden cases may read the data to make inputs (hw02's words)
            os.environ["GENAI_HW_DATA_DIR"] = str(self.data_dir)
        self.sandbox, self.own_sandbox = sandbox, sandbox is None
        self.limit = limit
        self.calls: dict[int, list[Call]] = {}
        self.fixed: dict[int, list[bool]] = {}
        self.expected: dict[int, list[dict[str, Any]]] = {}
        self.spec_errors: dict[int, str] = {}
        self.student: StudentProcess | None = None
        self.oracle: ReferenceProcess | None = None
        self.collecting: threading.Thread | None = None
        """Runs the reference's cases, from :meth:`start` on."""
        self.work_error: str | None = None
        self.stack = libraries_of(self.reference)
        """The homework's libraries: loaded by each process before any submitted code runs."""

    def start(self) -> None:
        deadline = time.monotonic() + self.limit
        single_blas_thread()
        for index, case in enumerate(self.cases):
            try:
                self.calls[index] = case.inputs(case_seed(self.seed, case))
                self.fixed[index] = _fixed_calls(case, self.seed, self.calls[index])
            except Exception as err:  # a bug in the spec must not cost the whole grade
                self.spec_errors[index] = _grader_error(err)
        timeline.mark("inputs")
        if self.package_dir is None:
            return
        jobs = [
            {"index": index, "function": case.function, "timeout": case.timeout,
             "check_mutation": case.check_mutation, "forbid_torch_attention": case.forbid_torch_attention,
             "calls": [{"args": wire.encode(c.args), "kwargs": wire.encode(c.kwargs)} for c in self.calls[index]]}
            for index, case in enumerate(self.cases) if index in self.calls
        ]
        resources = {repr(a): a for c in self.calls.values() for one in c
                     for a in [*one.args, *one.kwargs.values()] if isinstance(a, wire.WordVectorsSpec)}
        if self.sandbox is None:
            self.sandbox = Sandbox(python=self.python)
        self.sandbox.preload(self.stack, kernel=False)  # where it can: one import of the libraries for both
        self.sandbox.preload_more(sorted({name for r in resources.values() for name in r.LIBRARIES}))
        try:
            reference_jobs = [{**job, "check_mutation": False, "forbid_torch_attention": False,
                               "timeout": job["timeout"] * REFERENCE_SLACK}
                              for job in jobs]
            self.oracle = ReferenceProcess(self.reference, reference_jobs, self.sandbox, data_dir=self.data_dir,
                                           preload=list(resources.values()), deadline=deadline,
                                           stack=self.stack)
            self.oracle.launch()  # not waited for: it computes while the student's runner starts
        except Exception as err:  # noqa: BLE001 - every case then reports the grader error
            self.work_error = _grader_error(err)
        else:
            self.collecting = threading.Thread(target=self._collect_expected, name="genai-hw-reference",
                                               daemon=True)
            self.collecting.start()
        self.student = StudentProcess(self.package_dir, jobs, self.sandbox, data_dir=self.data_dir,
                                      forbid_gensim=bool(resources), preload=list(resources.values()),
                                      deadline=deadline, stack=self.stack)
        timeline.mark("snapshot")
        self.student.start()

    def work(self) -> None:
        """Run the student's cases, and wait for the reference's (collected in a thread since :meth:`start`)."""
        try:
            if self.student is not None:
                self.student.pump(restart=True)
        except Exception as err:  # pragma: no cover - reported by finish()
            self.work_error = _grader_error(err)
        if self.collecting is not None:
            self.collecting.join()

    def _collect_expected(self) -> None:
        try:
            self.oracle.pump(restart=True)
            for index in range(len(self.cases)):
                if index in self.spec_errors or index not in self.calls:
                    continue
                try:
                    self.expected[index] = _expected(self.oracle.records.get(index), len(self.calls[index]))
                except (GraderError, wire.WireError) as err:
                    self.spec_errors[index] = (f"internal grader error (the reference: {err}); "
                                               "please tell your instructor")
        except Exception as err:  # pragma: no cover - reported by judge()
            self.work_error = _grader_error(err)
        finally:
            self.oracle.close()

    def finish(self) -> list[CaseResult]:
        records: dict[int, dict[str, Any]] = {}
        try:
            if self.student is not None:
                try:
                    self.student.pump(restart=True)
                finally:
                    self.student.close()
                records = self.student.records
        finally:
            if self.oracle is not None:
                self.oracle.close()
            if self.own_sandbox and self.sandbox is not None:
                self.sandbox.close()
        return self.judge(records)

    def judge(self, records: dict[int, dict[str, Any]] | None = None) -> list[CaseResult]:
        """One :class:`CaseResult` per case from the runner's ``records`` (default: what has come back)."""
        if records is None:
            records = dict(self.student.records) if self.student is not None else {}
        cases_module.STUDENT_DEVICE = "cuda" if gpu_visible() else "cpu"  # where the submitted functions ran
        results = []
        for index, case in enumerate(self.cases):
            if self.package_dir is None and index not in self.spec_errors:
                results.append(CaseResult(case, False, PACKAGE_MISSING))
                continue
            if index in self.spec_errors or index not in self.expected:
                results.append(CaseResult(case, False, self.spec_errors.get(index) or self.work_error
                                          or "internal grader error; please tell your instructor"))
                continue
            record = records.get(index, {"broken": "no result came back"})
            try:
                results.append(self._judge_case(index, case, record))
            except Exception as err:  # noqa: BLE001 - judging one case must never cost the others
                results.append(CaseResult(case, False, f"{case.what}: your result could not be judged "
                                                       f"({type(err).__name__}: {str(err)[:200]})"))
        return results

    def _judge_case(self, index: int, case: Case, record: dict[str, Any]) -> CaseResult:
        calls, expected = self.calls[index], self.expected[index]
        counts = {"inputs": len(calls), "fixed": sum(self.fixed[index])}
        if "broken" in record:
            return CaseResult(case, False, f"{case.what}: {record['broken']}", **counts)
        if record.get("import_error"):
            module = case.function.split(".")[0]
            return CaseResult(case, False, f"{case.what}: could not import genai_hw.{module}: {record['import_error']}",
                              **counts)
        got_calls = record.get("calls") or []
        for i, one in enumerate(calls):
            got = got_calls[i] if i < len(got_calls) and isinstance(got_calls[i], dict) else {}
            problem = _judge(case, one, expected[i], got, fixed=self.fixed[index][i])
            if problem:
                return CaseResult(case, False, f"{case.what}: {problem}", **counts)
        return CaseResult(case, True, f"{case.what}: passed ({len(calls)} inputs)", **counts)


def _grader_error(err: Exception) -> str:
    return f"internal grader error ({type(err).__name__}: {err}); please tell your instructor"


def grade_cases(
    cases: list[Case],
    package_dir: Path | None,
    reference: Path,
    seed: int,
    python: str = sys.executable,
    data_dir: Path | None = None,
    limit: float = PACKAGE_LIMIT,
) -> list[CaseResult]:
    """Grade ``cases`` against the submitted package at ``package_dir`` (None: not uploaded), in one go.

    ``reference``: the reference ``genai_hw`` folder. ``data_dir`` holds the data files that resource
    arguments (word vectors) load, for both sides.
    """
    session = GradingSession(cases, package_dir, reference, seed, python=python, data_dir=data_dir, limit=limit)
    session.start()
    session.work()
    return session.finish()


def load_spec(spec_path: Path) -> types.ModuleType:
    """Import a homework's ``hidden_cases.py``."""
    spec = importlib.util.spec_from_file_location(f"genai_hw_cases_{spec_path.parent.name}", spec_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_cases(spec_path: Path) -> list[Case]:
    """``CASES`` of a homework's ``hidden_cases.py``."""
    return list(load_spec(spec_path).CASES)

