"""The trusted side of hidden-test grading.

:class:`GradingSession` (and :func:`grade_cases`, all its phases in one go)
makes each case's inputs from the run's seed, runs the reference package in
a process of its own (:class:`ReferenceProcess`) and the submitted package
in a separate isolated one (:mod:`autograder.runner` both), and compares.
Submitted code never runs in this process, and what both return arrives as
plain data (:mod:`autograder.wire`) over pipes whose lines are signed with a
per-run key. This process never imports torch, gensim or the reference: a
tensor is a :class:`wire.Tensor` here (dtype, device, numpy values).

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
from . import wire
from .cases import Call, Case, short
from .sandbox import DATA_FACTOR, MEMORY_MIB, PACKAGE_LIMIT, STARTUP_MIB, Sandbox, copy_tree

REFERENCE_NAME = "genai_hw_reference"
CALL_GRACE = 2.0
"""Seconds past a call's timeout before its process is killed (a loop that ignores the alarm)."""
READY_TIMEOUT = 60.0
"""Seconds the runner may take to import the submitted package, or stay silent between cases."""
OUT_OF_TIME = (f"not run: grading your package ran out of time (all cases together may take "
               f"{PACKAGE_LIMIT:.0f} s; earlier cases hung or were slow)")
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
    """Runs the cases of a job in isolated runner processes (see :mod:`autograder.runner`).

    The submitted package is snapshotted into the sandbox's read-only
    ``pkg/`` folder when this object is made (before any student code runs);
    every runner, a restarted one included, imports that snapshot.
    :meth:`start` launches a runner as the sandbox's package user and returns
    once it is ``ready`` (the submitted package imported). :meth:`pump`
    collects its signed result lines; a call that hangs past its timeout plus
    ``CALL_GRACE`` gets every process of the package user killed, and with
    ``restart`` a new runner takes the remaining cases, so a broken case costs
    only itself. Nothing runs past ``deadline`` (``time.monotonic()``).
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
        self.by_index = {job["index"]: job for job in jobs}
        self.pending = list(jobs)
        self.records: dict[int, dict[str, Any]] = {}
        self.proc: subprocess.Popen | None = None
        self.lines: queue.Queue = queue.Queue()
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

    def close(self) -> None:
        """End the runner and everything it started (detached processes included)."""
        if self.proc is not None:
            _kill_group(self.proc)
            self.proc = None
        self._kill_all()

    def _ended_why(self) -> str:
        """Why the runner ended during a case: over its memory limit (the watch or the OOM killer ended it),
        or on its own."""
        over = self._over_memory()
        if over:
            return f"{self.sandbox.watch.message('package')}; it was stopped at {over:.0f} MiB"
        return f"the Python process running your code ended during this case (exit code {self.proc.returncode})"

    def _over_memory(self) -> float | None:
        self.sandbox.watch.sample()  # an OOM kill just now is counted before the reason is given
        return self.sandbox.watch.over.pop("package", None)

    def _data_mib(self) -> int | None:
        return MEMORY_MIB["package"] * DATA_FACTOR

    def _baseline(self, kib: Any) -> None:
        """A new runner's memory before any student code ran (None: it is starting). Only its first report,
        sent before it imports the package, is taken."""
        if kib is None:
            self._baseline_open = True
            self.sandbox.watch.set_baseline("package", None)
        elif self._baseline_open and isinstance(kib, int) and 0 <= kib <= STARTUP_MIB * 1024:
            self._baseline_open = False
            self.sandbox.watch.set_baseline("package", kib / 1024)

    def _event(self, event: Any) -> Any:
        """Take a runner's set-up report out of the stream of events (a baseline is only taken before the
        runner is ready; ``ready`` closes it)."""
        if isinstance(event, dict) and event.get("event") == "baseline":
            self._baseline(event.get("kib"))
            return "wait"
        if isinstance(event, dict) and event.get("event") == "ready":
            self._baseline_open = False
        return event

    def _env(self) -> dict[str, str]:
        return self.sandbox.env("package", {
            "GENAI_HW_DEVICE": "auto" if gpu_visible() else "cpu",  # the GPU where torch sees one
            "CUBLAS_WORKSPACE_CONFIG": ":4096:8",  # deterministic cuBLAS (runner._deterministic_cuda)
            "GENAI_HW_DATA_DIR": str(self.data_dir or ""),
        })

    def _launch(self) -> subprocess.Popen:
        command = [self.python, "-I", str(self.root / "genai_hw_runner.py"), str(self.root)]
        return subprocess.Popen(self.sandbox.command("package", command), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                **self.sandbox.popen_kwargs("package", env=self._env()))

    @staticmethod
    def _read(proc: subprocess.Popen, lines: queue.Queue, key: bytes) -> None:
        try:
            for raw in proc.stdout:
                text, _, mac = raw.decode("utf-8", errors="replace").rstrip("\n").rpartition("\t")
                expected = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
                if hmac.compare_digest(mac, expected):
                    try:
                        lines.put(json.loads(text))
                    except ValueError:
                        pass
        except (OSError, ValueError):  # the pipe was closed under us: the runner was stopped
            pass
        lines.put(None)  # end of output: the process has ended

    def launch(self) -> None:
        """Start a runner for the pending cases, without waiting for it."""
        self.key = secrets.token_bytes(32)
        self.lines = queue.Queue()
        self._kill_all()  # nothing of an earlier runner survives into this one
        self._baseline(None)
        self.proc = self._launch()
        header = {"key": self.key.hex(), "cases": self.pending, "forbid_gensim": self.forbid_gensim,
                  "preload": [wire.encode(r) for r in self.preload], "role": self.role, "stack": self.stack,
                  "data_mib": self._data_mib()}
        try:
            self.proc.stdin.write(json.dumps(header).encode("utf-8") + b"\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        threading.Thread(target=self._read, args=(self.proc, self.lines, self.key), daemon=True).start()

    def start(self, ready_timeout: float = READY_TIMEOUT) -> None:
        """Launch a runner for the pending cases; return when it is ready (or gone)."""
        self.launch()
        deadline = min(time.monotonic() + ready_timeout, self.deadline)
        while time.monotonic() < deadline:
            try:
                event = self._event(self.lines.get(timeout=0.05))
            except queue.Empty:
                continue
            if event == "wait":
                continue
            if event is None or event.get("event") == "ready":
                if event is None:
                    self.lines.put(None)
                return
        self.close()  # importing the package never finished
        reason = (OUT_OF_TIME if time.monotonic() >= self.deadline else
                  f"importing your genai_hw package did not finish within {ready_timeout:.0f} s")
        for job in self.pending:
            self.records[job["index"]] = {"event": "done", "case": job["index"], "broken": reason}
        self.pending = []

    def pump(self, restart: bool = True) -> None:
        """Collect results until the runner ends; with ``restart``, until every case has a record."""
        while self.pending:
            if time.monotonic() >= self.deadline:
                self.close()
                for job in self.pending:
                    self.records.setdefault(job["index"], {"event": "done", "case": job["index"],
                                                           "broken": OUT_OF_TIME})
                self.pending = []
                return
            if self.proc is None:
                if not restart:
                    return
                self.start()
                continue
            current, started, broken = None, time.monotonic(), None
            heard = time.monotonic()
            while True:
                try:
                    event = self._event(self.lines.get(timeout=0.05))
                    heard = time.monotonic()
                except queue.Empty:
                    event = "wait"
                    if current is None and time.monotonic() - heard > READY_TIMEOUT:
                        # Silent between cases (set-up or exit hung): the next case pays for it.
                        waiting = next((j["index"] for j in self.pending if j["index"] not in self.records), None)
                        if waiting is not None:
                            broken = (waiting, f"the Python process running your code stopped responding "
                                               f"for {READY_TIMEOUT:.0f} s")
                        break
                if event is None:  # the process ended
                    self.proc.wait()
                    if current is not None:
                        broken = (current, self._ended_why())
                    break
                if isinstance(event, dict):
                    index = event.get("case")
                    if index in self.by_index and index not in self.records:
                        if event.get("event") in ("start", "call"):
                            current, started = index, time.monotonic()
                        elif event.get("event") == "done":
                            self.records[index] = event
                            current = None
                if current is not None:
                    budget = self.by_index[current]["timeout"] + CALL_GRACE
                    if time.monotonic() - started > budget:
                        broken = (current, f"did not finish within {budget:.0f} s (an infinite loop?)")
                        break
                if time.monotonic() >= self.deadline:
                    break
            self.close()
            if broken is not None:
                self.records[broken[0]] = {"event": "done", "case": broken[0], "broken": broken[1]}
            before = len(self.pending)
            self.pending = [job for job in self.pending if job["index"] not in self.records]
            if self.pending and len(self.pending) == before:
                # The process died before starting any case (at interpreter start, or importing the package).
                over = self._over_memory()
                reason = ("importing your genai_hw package " + self.sandbox.watch.message("package")
                          if over else "the Python process running your code could not start")
                for job in self.pending:
                    self.records[job["index"]] = {"event": "done", "case": job["index"], "broken": reason}
                self.pending = []


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
        proc = subprocess.Popen([self.python, "-I", str(self.root / "genai_hw_runner.py"), str(self.root)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                cwd=str(self.root), env=self._env(), start_new_session=True)
        self.sandbox.adopt(proc)  # killed with the student processes if the grading is interrupted
        return proc

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.root, ignore_errors=True)


def gpu_visible() -> bool:
    """Whether this machine shows an NVIDIA GPU (the student's runner then computes on it, and float32
    results get :data:`cases.GPU_FLOAT32_RTOL`). Decided here, not from what the runner reports."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _judge(case: Case, one: Call, expected: dict[str, Any], got: dict[str, Any], fixed: bool = False) -> str | None:
    """None when the submitted call's outcome matches the reference, else a message.

    ``fixed``: the call's input is the same at every grading run (an edge
    case). Its message then shows the input and what came back, never the
    expected outcome, so a table of answers learned from failure messages
    gains nothing.
    """
    on = f"on input {one.describe()}"
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
                    f"your package may allocate {MEMORY_MIB['package'] * DATA_FACTOR} MiB beyond what Python and "
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
    if got.get("mutated"):
        return f"{on}: your function changed its argument(s) {got['mutated']}; it must not modify its inputs"
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


def _safe_decode(data: Any) -> Any:
    try:
        return wire.decode(data)
    except wire.WireError:
        return "<unreadable>"


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
       reference's process (:class:`ReferenceProcess`) on the same inputs,
       snapshots the submitted package and launches the isolated runner on it
       as the sandbox's package user; returns once the runner has imported
       the package.
    2. :meth:`work`: collects both processes' outcomes; a runner that breaks
       is restarted (from the same read-only snapshot) for the remaining
       cases.
    3. :meth:`finish`: waits for what is left, ends both processes,
       compares, and returns one :class:`CaseResult` per case. Judging a case
       never raises: whatever goes wrong costs that case alone.

    ``reference``: the reference ``genai_hw`` folder (copied when the session
    starts; the caller may delete it then). This process only makes inputs
    and compares plain data: it never imports the reference, torch or gensim.
    ``sandbox``: where student code runs (see :mod:`autograder.sandbox`); by
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
        self.work_error: str | None = None
        self.stack = libraries_of(self.reference)
        """The homework's libraries: loaded by each process before any submitted code runs."""

    def start(self) -> None:
        deadline = time.monotonic() + self.limit
        for index, case in enumerate(self.cases):
            try:
                self.calls[index] = case.inputs(case_seed(self.seed, case))
                self.fixed[index] = _fixed_calls(case, self.seed, self.calls[index])
            except Exception as err:  # a bug in the spec must not cost the whole grade
                self.spec_errors[index] = _grader_error(err)
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
        self.student = StudentProcess(self.package_dir, jobs, self.sandbox, data_dir=self.data_dir,
                                      forbid_gensim=bool(resources), preload=list(resources.values()),
                                      deadline=deadline, stack=self.stack)
        self.student.start()

    def work(self) -> None:
        """Collect the reference's outcomes (in a thread) and the student's, until both are done."""
        oracle = threading.Thread(target=self._collect_expected, name="genai-hw-reference", daemon=True)
        oracle.start()
        try:
            if self.student is not None:
                self.student.pump(restart=True)
        except Exception as err:  # pragma: no cover - reported by finish()
            self.work_error = _grader_error(err)
        oracle.join()

    def _collect_expected(self) -> None:
        if self.oracle is None:
            return
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

