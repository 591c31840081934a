"""The Otter plugin that grades a submission without trusting it, or Otter's kernel.

Otter runs the submitted notebook in a Jupyter kernel and would run the
hidden tests there too, where the notebook could have changed anything; it
also deserialises data the submission controls. This plugin moves the
package grading out of the kernel, runs every bit of student code in a
sandbox (:mod:`autograder.grading.sandbox`: its own unprivileged users when the
grader is root), and closes Otter's deserialisation paths.

``before_grading`` (Otter's own process, before it reads anything of the
  submission but the notebook's JSON): deletes ``.OTTER_LOG`` (Otter would
  unpickle it), locks the grading folder (``chmod 700``), takes a sandbox,
  and hardens Otter (:func:`_harden_otter`).

``before_execution`` (no student code has run yet): puts the autograder's
  copy of each given module (an earlier homework's, which this one hands
  out solved: the manifest's ``given``) in the submitted ``genai_hw/`` over
  whatever the upload has there (:func:`put_given`), so that the package
  and the notebook are graded with it; loads the hidden cases
  from the autograder's ``genai_hw_grading/`` folder, starts the reference's
  own process on a private copy of the reference and deletes the reference
  from that folder, snapshots the submitted ``genai_hw/`` read-only and
  grades it in the sandbox's package runner (:mod:`autograder.grading.harness`; a
  runner that broke is restarted from the same snapshot for the remaining
  cases). This process compares plain data and never imports the reference
  or torch. Then every process of the package user
  is killed and a results.json with the package questions is written, so a
  grading stopped from outside during the notebook still shows them. The
  two phases never overlap, so the grading's memory is the grader's plus
  one role's (docs/grading.md). Last it copies the submission
  into the sandbox's notebook folder, where the kernel will run as the
  notebook user, and sets ``GENAI_HW_GRADING=1``.

``after_grading``: kills every student process and removes the sandbox, and
  replaces whatever the kernel reported for the package questions with the
  plugin's results. The notebook's own questions keep the kernel's
  pass/fail, with their points taken from the autograder's test files. If
  the notebook failed, the package points are kept and the notebook
  questions get 0 with the reason.

It never raises: a grader error becomes a failed case with a message.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import nbformat
from otter.plugins import AbstractOtterPlugin

from . import sandbox as sandboxing
from . import timeline
from .cases import clip
from .gradescope import natural_key, package_phase_results, present, visibility_of

GRADING_DIR = "genai_hw_grading"
SEED_ENV_VAR = "GENAI_HW_SEED"
KERNEL_RESULTS_LIMIT = 5 * 2**20
"""Bytes of the kernel's results file that are read; a longer file counts as no results."""
OTTER_LOG = ".OTTER_LOG"

ACTIVE: GenaiHwGrader | None = None
"""The plugin of the grading in progress (Otter runs one per process); the hardened Otter reads it."""


# Otter's kernel reports its results through this cell (Otter's own writes a pickle): plain JSON with each
# public test case's name, pass/fail and message, and the values of the notebook's answers that hidden test
# cases check (their parameters: ANSWERS, filled in per grading), judged by the grader, nothing else.
EXPORT_CELL_SOURCE = """\
from otter.execute import Checker
for {tests_loop_var} in {tests_glob_json}:
    Checker.check_if_not_already_checked({tests_loop_var})

import json as _genai_hw_json
_genai_hw_answers = {{}}
for _genai_hw_name in ANSWERS:
    _genai_hw_value = globals().get(_genai_hw_name)
    try:
        _genai_hw_plain = _genai_hw_json.loads(_genai_hw_json.dumps(_genai_hw_value)) == _genai_hw_value
    except Exception:
        _genai_hw_plain = False
    _genai_hw_answers[_genai_hw_name] = ({{"value": _genai_hw_value}} if _genai_hw_plain else
                                         {{"type": type(_genai_hw_value).__name__}})
with open("{results_path}", "w", encoding="utf-8") as _genai_hw_f:
    _genai_hw_json.dump({{"tests": [{{"name": str(_t.name), "cases": [[str(_r.test_case.name), _r.passed is True,
                         str(_r.message)[:2000]] for _r in _t.test_case_results]}}
                                    for _t in Checker.get_results()],
                          "answers": _genai_hw_answers}}, _genai_hw_f)
"""


KERNEL_OUTPUT_CAP = """\
def _genai_hw_cap_output(limit):
    import sys

    left = [limit]
    for stream in (sys.stdout, sys.stderr):
        def write(text, _write=stream.write):
            if left[0] <= 0:
                return len(text)
            left[0] -= len(text)
            return _write(text if left[0] >= 0 else text[:left[0]])
        stream.write = write

    class Forget(dict):
        def __missing__(self, key):
            return []

        def __contains__(self, key):
            return False

    try:
        from IPython import get_ipython

        get_ipython().history_manager.outputs = Forget()
        get_ipython().InteractiveTB.set_mode(mode="Plain")
    except Exception:
        pass


_genai_hw_cap_output({limit})
del _genai_hw_cap_output


def _genai_hw_still_autoreload():
    import sys
    import types

    def load_ipython_extension(ip):
        for name in ("autoreload", "aimport"):
            ip.register_magic_function(lambda line="": None, "line", name)

    still = types.ModuleType("IPython.extensions.autoreload", "genai-hw grading: %autoreload does nothing")
    still.load_ipython_extension = load_ipython_extension
    sys.modules["IPython.extensions.autoreload"] = still


_genai_hw_still_autoreload()
del _genai_hw_still_autoreload


def _genai_hw_settle(stack, data_mib):
    import importlib
    import resource

    for name in stack:
        try:
            importlib.import_module(name)
        except BaseException:
            pass
    with open("/proc/self/status", encoding="utf-8") as f:
        data = next((int(line.split()[1]) for line in f if line.startswith("VmData:")), 0)
    limit = data * 1024 + data_mib * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


_genai_hw_settle({stack!r}, {data_mib})
del _genai_hw_settle
"""
"""Run by the notebook's kernel at start, so that printing does not cost the kernel memory: what its cells
print past ``limit`` characters (twice what the grader keeps, so the grader's note still shows) is dropped
at once (ipykernel holds a cell's prints until it sends them, every 0.2 s), and IPython's history does not
keep a copy of everything printed (IPython 8 stores every write to stdout in
``HistoryManager.outputs``, for good: 200 prints of 1 MiB left the kernel 205 MiB larger). A courtesy to
the student, not a boundary: the notebook could undo it, in its own kernel only.

The notebooks' ``%load_ext autoreload`` / ``%autoreload 2`` (edits to genai_hw/*.py visible without a
restart) load a stand-in that does nothing: no file changes while a notebook is graded, and the real one
checks every loaded module's file before and after each cell (17 ms of CPU a cell with torch loaded,
about a second a notebook).

A cell's error is shown as a plain traceback (``%xmode Plain``: each frame's file, line and code) instead of
IPython's default with context and colours: nobody reads a graded notebook's tracebacks, and the default
costs 12 to 16 ms of CPU each, 0.2 s the first (the untouched stubs raise in most cells: half a second of
a homework 5 grading on 2 cores).

Then, still before any cell runs, it loads the homework's libraries (the kernel's memory once it is ready is
its baseline, which the memory limit does not count) and caps the kernel's data size at what it holds then
plus the notebook's allowance (RLIMIT_DATA, hard limit too: no cell can raise it again)."""


class _TrustedResults:
    """Stands in for the ``pickle`` module inside ``otter.execute``: builds the results from JSON.

    The kernel's claims are only (test name, case name, passed, message); the
    tests, their points and visibility come from the autograder's own test
    files, so a notebook can at most pass its own questions' tests.
    """

    HIGHEST_PROTOCOL = 5

    @staticmethod
    def load(file: Any) -> Any:
        grader = ACTIVE
        if grader is not None and grader.kernel_error:
            raise RuntimeError(grader.kernel_error)
        data = file.read(KERNEL_RESULTS_LIMIT + 1)
        if len(data) > KERNEL_RESULTS_LIMIT:
            raise RuntimeError("the notebook's results were too large to read")
        if not data:
            raise RuntimeError("the notebook's kernel reported no results (did it finish?)")
        claims, answers = _read_claims(data)
        tests_dir = grader.source / "tests" if grader is not None else Path("tests")
        package = set(grader.questions) if grader is not None else set()
        return trusted_results(tests_dir, claims, answers=answers, package_questions=package)


def _read_claims(data: bytes) -> tuple[dict[str, dict[str, tuple[bool, str]]], dict[str, Any]]:
    """The kernel's report: each public test case's pass/fail and message, and the notebook's answers
    (``{name: {"value": plain data}}`` or ``{name: {"type": ...}}`` for a value that is not plain data)."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise RuntimeError(f"the notebook's results could not be read ({type(err).__name__})") from None
    answers = raw.get("answers") if isinstance(raw, dict) and isinstance(raw.get("answers"), dict) else {}
    tests = raw.get("tests") if isinstance(raw, dict) else raw
    claims: dict[str, dict[str, tuple[bool, str]]] = {}
    for test in tests if isinstance(tests, list) else []:
        if not isinstance(test, dict) or not isinstance(test.get("name"), str):
            continue
        cases = claims.setdefault(test["name"], {})
        for entry in test.get("cases") if isinstance(test.get("cases"), list) else []:
            if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str):
                cases[entry[0]] = (entry[1] is True, str(entry[2])[:2000])
    return claims, {str(k): v for k, v in answers.items() if isinstance(v, dict)}


def trusted_results(tests_dir: Path, claims: dict[str, dict[str, tuple[bool, str]]],
                    unreported: str = "the notebook did not report this test", answers: dict | None = None,
                    package_questions: set[str] | None = None) -> Any:
    """Otter ``GradingResults`` for the test files in ``tests_dir``, with pass/fail from ``claims``
    (a test case the claims do not mention fails with the message ``unreported``).

    Hidden test cases of notebook questions (not package questions, which the plugin grades itself) never
    reach the kernel (:func:`hide_hidden_cases`): with ``answers``, this process runs them, on the values the
    notebook reported for their parameters (plain data only)."""
    from otter.test_files import GradingResults
    from otter.test_files.abstract_test import TestCaseResult
    from otter.test_files.exception_test import ExceptionTestFile

    test_files = []
    for path in sorted(tests_dir.glob("*.py")):
        test_file = ExceptionTestFile.from_file(str(path))
        reported = claims.get(test_file.name, {})
        results = []
        for tc in test_file.test_cases:
            if answers is not None and tc.hidden and test_file.name not in (package_questions or set()):
                passed, message = _judge_answer(tc, answers)
            else:
                passed, message = reported.get(tc.name, (False, unreported))
            results.append(TestCaseResult(test_case=tc, passed=passed, message=message))
        test_file.test_case_results = results
        test_files.append(test_file)
    return GradingResults(test_files)


def _judge_answer(test_case: Any, answers: dict[str, Any]) -> tuple[bool, str]:
    """Run a hidden test case of a notebook question here, in the grader, on the notebook's reported
    answers: the test's code is the autograder's, its inputs plain data (no student code runs)."""
    env: dict[str, Any] = {}
    for name in test_case.body._get_func_params():
        answer = answers.get(name)
        if answer is None:
            return False, f"the notebook did not report `{name}` (did it run to the end?)"
        if "value" not in answer:
            return False, (f"`{name}` is a {answer.get('type', 'value')}, not plain data (a number, a string, "
                           "a list or a dict of them): the grader could not check it")
        env[name] = answer["value"]
    try:
        test_case.body.call_func(env)
    except Exception as err:  # noqa: BLE001 - the test's own assertion, or its error on this value
        return False, f"Test case failed\n{type(err).__name__}: {clip(str(err), 1000)}"
    return True, "Test case passed"


def hide_hidden_cases(tests_dir: Path) -> list[str]:
    """Remove the hidden test cases from the kernel's copy of the tests (``tests_dir``), so that no code in
    the kernel can read what they expect; return the names of the notebook's answers they check (their
    functions' parameters), which the kernel reports for the grader to judge (:func:`trusted_results`)."""
    import ast

    names: set[str] = set()
    for path in sorted(tests_dir.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        kept = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(_is_hidden(d) for d in node.decorator_list):
                names.update(arg.arg for arg in node.args.args if arg.arg != "env")
                continue
            kept.append(node)
        tree.body = kept
        path.write_text(ast.unparse(tree) + "\n", encoding="utf-8")
    return sorted(names)


def _is_hidden(decorator: Any) -> bool:
    import ast

    return (isinstance(decorator, ast.Call) and any(
        k.arg == "hidden" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in decorator.keywords))


class _ResultsFile:
    """Stands in for ``tempfile`` inside ``otter.execute``: the kernel's results file lives in the sandbox,
    writable by the notebook user, in a folder it cannot change (no link or FIFO can replace it)."""

    @staticmethod
    def mkstemp(suffix: str = "", *args: Any, **kwargs: Any) -> tuple[int, str]:
        if ACTIVE is not None and ACTIVE.sandbox is not None:
            return ACTIVE.sandbox.results_file(suffix)
        import tempfile

        return tempfile.mkstemp(suffix, *args, **kwargs)


def _no_log_server() -> tuple[tuple[str, int], Any]:
    """Otter's log server unpickles whatever connects to it; the kernel's logs go nowhere instead."""
    return ("127.0.0.1", 9), lambda: None


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("genai-hw: Otter's pickled data from the submission is not read")


def _sandboxed_kernel_manager():
    import zmq
    from jupyter_client.manager import AsyncKernelManager

    class SandboxedKernelManager(AsyncKernelManager):
        """Starts the notebook's kernel as the sandbox's notebook user, in its folder, with its environment."""

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            box = ACTIVE.sandbox
            self.connection_file = str(box.root / f"kernel-{secrets.token_hex(6)}.json")
            # Jupyter's IPC transport (Unix sockets in a folder of the notebook user's) instead of TCP: the
            # seccomp filter gives student code no TCP or UDP socket at all.
            sockets = box.homes["notebook"] / "ipc"
            sockets.mkdir(mode=0o700, exist_ok=True)
            box.give(sockets, "notebook")
            self.transport, self.ip = "ipc", str(sockets / "kernel")
            return await super()._async_pre_start_kernel(**kw)

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            box = ACTIVE.sandbox
            box.give(Path(self.connection_file), "notebook")
            cap = box.root / f"output-cap-{secrets.token_hex(6)}.py"
            cap.write_text(KERNEL_OUTPUT_CAP.format(
                limit=2 * sandboxing.OUTPUT_LIMIT_BYTES, stack=list(ACTIVE.stack),
                data_mib=sandboxing.data_allowance_mib("notebook")), encoding="utf-8")
            box.share(cap, "notebook")
            # The kernel spec names the grader's Python as it was called (``sys.executable``), maybe through the
            # private checkout's .venv link that student users cannot follow: the path the sandbox checked.
            kernel_cmd = [sandboxing.resolve_folders(kernel_cmd[0]), *kernel_cmd[1:],
                          f"--IPKernelApp.exec_files={cap}"]
            jupyter = {k: v for k, v in (kw.get("env") or {}).items() if k.startswith("JPY_")}
            kw.update(box.popen_kwargs("notebook", env=box.env("notebook", jupyter)))
            kw["cwd"] = str(ACTIVE.kernel_dir)
            # What the kernel writes to its own stdout/stderr would land in the grader's output.
            kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
            forked = box.spawn("notebook", kernel_cmd, kw["env"], kw["cwd"])  # from the preloaded zygote
            if forked is not None:
                provisioner = self.provisioner
                provisioner.process, provisioner.pid, provisioner.pgid = forked, forked.pid, forked.pid
                provisioner.cwd = kw["cwd"]
                self._reconcile_connection_info(provisioner.connection_info)
                return None
            return await super()._async_launch_kernel(box.command("notebook", kernel_cmd), **kw)

        def client(self, **kwargs: Any) -> Any:
            kc = super().client(**kwargs)
            # Before its sockets exist: no message larger than MESSAGE_LIMIT_BYTES, and at most MESSAGE_QUEUE
            # of them waiting in the grader (output messages past that are dropped by ZeroMQ; replies wait).
            kc.context.setsockopt(zmq.MAXMSGSIZE, sandboxing.MESSAGE_LIMIT_BYTES)
            kc.context.setsockopt(zmq.RCVHWM, sandboxing.MESSAGE_QUEUE)
            return kc

    return SandboxedKernelManager


def _message_size(msg: dict) -> int:
    """Bytes a kernel message would cost the grader to keep: its content and metadata as JSON (text, data,
    tracebacks, display metadata, transient fields alike) and its binary buffers."""
    size = sum(len(bytes(b)) for b in msg.get("buffers") or [])
    for part in (msg.get("content"), msg.get("metadata")):
        try:
            size += len(json.dumps(part, default=str))
        except (TypeError, ValueError, RecursionError):
            size += sandboxing.OUTPUT_LIMIT_BYTES  # cannot even be measured: drop it
    return size


def _capped_messages(original):
    """nbclient's ``process_message``, keeping at most ``OUTPUT_LIMIT_BYTES`` of the notebook's output in all.

    Every message of the kernel's output channel counts, whatever its type and field (``stream``,
    ``display_data``, ``update_display_data``, ``execute_result``, ``error``; content, metadata and
    buffers), before nbclient stores any of it; past the limit they are dropped with one note. Widget
    (``comm``) messages are dropped at once: a grading needs no widget, and nbclient would keep their state.
    Only ``status`` and ``execute_input`` (how nbclient knows a cell started and ended; it keeps nothing of
    them) always pass."""

    def process_message(self, msg, cell, cell_index):
        if ACTIVE is None or ACTIVE.sandbox is None:
            return original(self, msg, cell, cell_index)
        msg_type = str(msg.get("msg_type") or (msg.get("header") or {}).get("msg_type") or "")
        if msg_type in ("status", "execute_input"):
            return original(self, msg, cell, cell_index)
        if msg_type.startswith("comm"):
            return None
        used = getattr(self, "_genai_hw_output", 0) + _message_size(msg)
        self._genai_hw_output = used
        if used <= sandboxing.OUTPUT_LIMIT_BYTES:
            return original(self, msg, cell, cell_index)
        if not getattr(self, "_genai_hw_output_noted", False):
            self._genai_hw_output_noted = True
            note = nbformat.v4.new_output("stream", name="stderr", text=(
                f"[genai-hw: the notebook's output went past {sandboxing.OUTPUT_LIMIT_BYTES // 2**20} MB; "
                "the rest was dropped]\n"))
            cell.outputs.append(note)
            return note
        return None

    process_message._genai_hw = True
    return process_message


NO_LOG = "No log found with which to verify student scores."
OTTER_LOG_NOTE = "scores are not checked against the submission's .OTTER_LOG (it is deleted unread)"


def _quiet_about_the_log(original):
    """Otter's runner says there is no log to check scores against, which reads like a warning on every
    grading: the plugin deletes the submission's log on purpose (it would be unpickled), so the line is
    dropped (the instructor's record says it once, in results.json's extra_data)."""

    def print_output(*args, **kwargs):
        if args and args[0] == NO_LOG:
            return None
        return original(*args, **kwargs)

    print_output._genai_hw = True
    return print_output


def _explained(original):
    """Otter's results.json record, with each package question's report and the homework's visibility."""

    def to_gradescope_dict(self, ag_config):
        record = original(self, ag_config)
        grader = ACTIVE
        if grader is not None and grader.reports is not None:

            try:
                record["tests"] = present(record["tests"], grader.reports, grader.visibility)
            except Exception:  # noqa: BLE001 - Otter's own record is still a valid result
                pass
        if grader is not None:  # Gradescope keeps extra_data with the result, unshown: for instructors
            record.setdefault("extra_data", {})["genai_hw"] = {"seed": grader.seed, "seconds": dict(grader.seconds),
                                                               "memory_mib": grader.memory_report(),
                                                               "isolation": grader.isolation(),
                                                               "notes": list(grader.instructor_notes),
                                                               "timeline": timeline.record()}
        return record

    to_gradescope_dict._genai_hw = True
    return to_gradescope_dict


def _harden_otter() -> None:
    """Make Otter's grading survive a hostile submission (installed once per process).

    Every place where Otter 7.0.0's ``otter run`` path deserialises bytes, and
    what happens to it here:

    - ``otter.check.logs.Log.from_file(".OTTER_LOG")`` (dill, in
      ``PythonRunner.run``): the file is deleted in ``before_grading`` and
      ``Log.from_file`` / ``LogEntry.unshelve`` refuse to run.
    - ``otter.execute.logging.LogRecordStreamHandler.unpickle`` (``pickle.loads``
      of whatever connects to the log server's localhost port): the server is
      not started, and ``unpickle`` refuses.
    - ``otter.execute.grade_notebook``'s ``pickle.load`` of the kernel's
      results: the kernel writes JSON instead (our export cell) and
      :class:`_TrustedResults` builds the results from the autograder's test
      files.
    - ``otter.run``'s ``dill.load(results/results.pkl)``: written by Otter
      itself from those trusted objects, in a folder no student user can reach.

    Also: a cell that runs past ``CELL_TIMEOUT`` is interrupted; the whole
    notebook has a hard wall-clock limit (``NOTEBOOK_LIMIT``) after which
    every process of the notebook user is killed; a kernel that dies ends the
    run instead of raising out of Otter.
    """
    import otter.execute
    import otter.execute.preprocessor
    import otter.run.run_autograder.runners.python_runner as python_runner
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbconvert.preprocessors import ExecutePreprocessor
    from otter.check.logs import Log, LogEntry
    from otter.execute.logging import LogRecordStreamHandler

    if not getattr(python_runner.print_output, "_genai_hw", False):
        python_runner.print_output = _quiet_about_the_log(python_runner.print_output)
    otter.execute.pickle = _TrustedResults
    otter.execute.tempfile = _ResultsFile
    otter.execute.start_server = _no_log_server
    otter.execute.preprocessor.EXPORT_CELL_SOURCE = EXPORT_CELL_SOURCE.replace("ANSWERS", "[]")
    LogRecordStreamHandler.unpickle = _refuse
    Log.from_file = classmethod(_refuse)
    LogEntry.unshelve = _refuse
    if getattr(ExecutePreprocessor.preprocess, "_genai_hw", False):
        return
    original = ExecutePreprocessor.preprocess
    manager_class = _sandboxed_kernel_manager()

    def preprocess(self, nb, resources=None, km=None):
        grader = ACTIVE
        self.timeout = sandboxing.CELL_TIMEOUT
        self.interrupt_on_timeout = True
        if grader is None:  # not a genai-hw grading: Otter as it is
            return original(self, nb, resources, km)
        if grader.sandbox is None or grader.kernel_dir is None:  # student code never runs unsandboxed
            grader.kernel_error = grader.kernel_error or "the grading sandbox could not be set up"
            return nb, resources
        timeline.mark("executor")  # Otter handed the notebook to nbclient: the kernel starts now
        self.kernel_manager_class = manager_class
        self.record_timing = True  # each cell's time, for the timeline's slowest cells
        # Once the last cell has replied, Otter has what it needs (the checks ran in cells, their results are
        # in the kernel's folder): the kernel is killed, not asked to tear itself down (a second of CPU with
        # torch loaded, twice that on half a CPU, for nothing the grading reads).
        self.shutdown_kernel = "immediate"
        resources = {"metadata": {"path": str(grader.kernel_dir)}}
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = original(self, nb, resources, km)
            except BaseException as err:  # noqa: BLE001 - reported below
                outcome["error"] = err

        watch = grader.sandbox.watch
        watch.set_baseline("notebook", None)  # the kernel loads its libraries: no cell has run yet

        def ready(**kwargs: Any) -> None:
            """The kernel answered (its start-up files ran, no cell yet): what it holds is its baseline."""
            timeline.mark("kernel.ready")
            watch.set_baseline("notebook", watch.usage()["notebook"])

        self.on_notebook_start = ready
        thread = threading.Thread(target=run, name="genai-hw-notebook", daemon=True)
        watch.phase = "notebook"
        started = time.monotonic()
        thread.start()
        # Until the notebook ends, runs out of time, or the watch stops its kernel for memory (nbclient
        # itself would wait for the cell's timeout before it noticed).
        while thread.is_alive() and time.monotonic() - started < sandboxing.NOTEBOOK_LIMIT:
            thread.join(0.1)
            if watch.over.get("notebook"):
                break
        grader.seconds["notebook"] = round(time.monotonic() - started, 3)
        timeline.mark("notebook")
        watch.sample()  # an OOM kill in the last moments counts too
        watch.phase = None
        if watch.over.get("notebook"):
            grader.sandbox.kill("notebook")
            grader.kernel_error = f"the notebook {watch.message('notebook')}; its kernel was stopped"
            thread.join(15)  # nbclient notices the dead kernel and cleans up
            return nb, resources
        if thread.is_alive():
            grader.kernel_error = (f"the notebook ran longer than {sandboxing.NOTEBOOK_LIMIT:.0f} s "
                                   "(its whole time limit under the grader); it was stopped")
            grader.sandbox.kill("notebook")
            thread.join(15)  # nbclient notices the dead kernel and cleans up
            return nb, resources
        grader.sandbox.kill("notebook")  # whatever the kernel left running
        timeline.cells(nb)
        error = outcome.get("error")
        if error is not None:
            if not isinstance(error, (DeadKernelError, CellTimeoutError, RuntimeError, OSError)):
                raise error
            grader.kernel_error = f"the notebook's kernel failed ({type(error).__name__}: {clip(str(error), 300)})"
            return nb, resources
        return outcome["value"]

    preprocess._genai_hw = True
    ExecutePreprocessor.preprocess = preprocess
    from otter.test_files import GradingResults

    if not getattr(GradingResults.to_gradescope_dict, "_genai_hw", False):
        GradingResults.to_gradescope_dict = _explained(GradingResults.to_gradescope_dict)
    if not getattr(NotebookClient.process_message, "_genai_hw", False):
        NotebookClient.process_message = _capped_messages(NotebookClient.process_message)


def put_given(package: Path, given: Path, modules: list[str]) -> list[str]:
    """Put the copy in ``given`` of each of ``modules`` into the submitted ``package``, over whatever the upload
    has under that name (a file, a folder, nothing): a module that the homework hands out solved is graded as
    handed out, in the runner's snapshot and in the notebook alike, whatever the student did to theirs.
    Returns a note for the student for each uploaded copy that was replaced or missing."""
    notes = []
    for module in modules:
        code = (given / f"{module}.py").read_bytes()
        target = package / f"{module}.py"
        try:
            info = target.lstat()
        except FileNotFoundError:
            info = None
        if info is not None and stat.S_ISREG(info.st_mode) and info.st_size == len(code) \
                and target.read_bytes() == code:
            continue
        if info is not None and stat.S_ISDIR(info.st_mode):
            shutil.rmtree(target)
        elif info is not None:
            target.unlink()
        target.write_bytes(code)
        notes.append(f"genai_hw/{module}.py is given in this homework (an earlier homework's solution): your "
                     "package and notebook were graded with the autograder's copy of it"
                     + (", not the one you uploaded." if info is not None else " (your upload has none)."))
    return notes


def _submission_folder(submission_path: str) -> Path:
    """The folder Otter (or Gradescope) unpacked the upload into, named by the path Otter gives, never by
    where a link in the upload points: the autograder's own files are found next to it (``../source``),
    so a notebook that is a link into a folder the student wrote cannot bring its own plugin or tests."""
    return Path(os.path.abspath(submission_path)).parent


def _zip_plugin_class(source: Path) -> type | None:
    """The plugin class of the autograder zip's own grading package (``source``: its ``autograder/grading/``
    folder), if this is not it.

    ``otter run`` imports the plugin by name, so an installed ``autograder``
    (an editable checkout, say) would win over the code the zip carries.
    Loading the zip's package under the name ``autograder`` makes the hidden
    cases and the harness use the zip's code too.
    """
    here = Path(__file__).resolve().parent
    if not (source / "plugin.py").is_file() or source.resolve() == here:
        return None
    for name in [n for n in sys.modules if n == "autograder" or n.startswith("autograder.")]:
        del sys.modules[name]
    sys.path.insert(0, str(source.parents[1]))
    importlib.invalidate_caches()
    module = importlib.import_module("autograder.grading.plugin")
    return module.GenaiHwGrader


class GenaiHwGrader(AbstractOtterPlugin):
    """Grades ``genai_hw`` functions against the reference in a sandbox, and the notebook in another."""

    def __new__(cls, submission_path: str, submission_metadata: dict, plugin_config: dict) -> Any:
        source = _submission_folder(submission_path).parent / "source" / "autograder" / "grading"
        own = _zip_plugin_class(source) if cls.__module__ == "autograder.grading.plugin" else None
        if own is not None and own is not cls:
            return own(submission_path, submission_metadata, plugin_config)
        return super().__new__(cls)

    def __init__(self, submission_path: str, submission_metadata: dict, plugin_config: dict) -> None:
        super().__init__(submission_path, submission_metadata, plugin_config)
        timeline.reset()
        timeline.mark("otter")  # Otter has started, unpacked the autograder and the upload, and loaded this
        self.case_results: list | None = None
        self.seed: int | None = None
        self.error: str | None = None
        self.questions: dict[str, Any] = {}
        self.package_missing = False
        self.sandbox: sandboxing.Sandbox | None = None
        self.kernel_dir: Path | None = None
        self.kernel_error: str | None = None
        self.notes: list[str] = []
        """What the student reads in results.json's output: only what helps them."""
        self.instructor_notes: list[str] = [OTTER_LOG_NOTE]
        """Grader housekeeping: printed to Otter's output (the instructor's log) and kept in extra_data."""
        self.source = _submission_folder(submission_path).parent / "source"
        self.reports: dict[str, str] | None = None
        self.visibility: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        """Wall seconds of each phase (``package``, ``notebook``), in results.json's plugin data."""
        self.stack: list[str] = []
        """The homework's libraries (``harness.libraries_of`` the reference), loaded before student code."""

    # Hooks -----------------------------------------------------------------

    def before_grading(self, config: Any) -> None:
        global ACTIVE
        ACTIVE = self
        submission = _submission_folder(self.submission_path)
        self.notes += [f"genai-hw: {note}" for note in sandboxing.drop_special_files(submission)]
        for log in submission.rglob(OTTER_LOG):
            with contextlib.suppress(OSError):
                log.unlink()
        try:
            _harden_otter()
        except Exception:  # pragma: no cover - Otter's layout is pinned
            self.error = traceback.format_exc(limit=5)
        if sandboxing.isolating():
            with contextlib.suppress(OSError):
                os.chmod(submission.parent, 0o700)  # /autograder on Gradescope: nothing in it for students
        # A grader that cannot run student code as the sandbox's users, or in namespaces (unless told to run
        # it unisolated), stops here, before grading anything: SandboxError goes up through Otter (genai-hw
        # grade and release check first and say why; the Gradescope entry point exits without a result),
        # never a zero for the student.
        self.sandbox = sandboxing.Sandbox()
        timeline.mark("sandbox")
        if not self.sandbox.isolated:
            self.instructor_notes.append(sandboxing.NOT_ISOLATED)
        self.sandbox.remember(submission.parent.parent)  # otter run's temporary folder, if this is one
        self._install_cleanup()

    def before_execution(self, submission: Any) -> Any:
        os.environ["GENAI_HW_GRADING"] = "1"
        if self.sandbox is None:  # no sandbox, no student code: the package and notebook questions score 0
            return submission
        started = time.monotonic()
        try:
            self._grade_package()
        except Exception:
            self.error = traceback.format_exc(limit=5)
        self.seconds["package"] = round(time.monotonic() - started, 3)
        timeline.mark("package")
        try:
            self._prepare_kernel_dir()
        except Exception:
            self.kernel_error = "the notebook could not be prepared: " + traceback.format_exc(limit=3)
        timeline.mark("kernel_dir")
        return submission

    def after_grading(self, results: Any) -> None:
        timeline.mark("otter_checks")  # Otter ran the notebook's checks and collected their results
        if self.sandbox is not None:
            self.sandbox.clear()  # nothing of the student's runs on while results are written
        try:
            self._merge(results)
        except Exception:
            results.set_output("genai-hw: part of the grading failed inside the grader, not in your code; your "
                               "instructor has the details.")
            self.instructor_notes.append("grader error while merging results:\n" + traceback.format_exc(limit=5))
            print(f"genai-hw: {self.instructor_notes[-1]}")

    def isolation(self) -> str | None:
        """How student code was isolated (``users``, ``namespaces`` or ``none``; None: no sandbox was made)."""
        return self.sandbox.mode if self.sandbox is not None else None

    def memory_report(self) -> dict[str, dict[str, float | None]]:
        """Each role's baseline, peak and limit (MiB), for instructors (results.json's extra_data)."""
        if self.sandbox is None:
            return {}
        watch = self.sandbox.watch
        return {role: {"baseline": None if watch.baseline_seen[role] is None else round(watch.baseline_seen[role]),
                       "peak": round(watch.peak[role]), "limit": round(watch.limit_known(role))}
                for role in sandboxing.ROLES}

    # Steps -----------------------------------------------------------------

    def _grade_package(self) -> None:
        from .harness import GradingSession, load_cases

        grading = self.source / GRADING_DIR
        manifest = json.loads((grading / "manifest.json").read_text(encoding="utf-8"))
        self.questions = manifest["questions"]

        self.visibility = visibility_of(self.source)
        self.seed = int(os.environ.get(SEED_ENV_VAR) or secrets.randbelow(2**31))
        package = _submission_folder(self.submission_path) / "genai_hw"
        self.package_missing = not package.is_dir() or package.is_symlink()
        try:
            if not self.package_missing:
                self.notes += [f"genai-hw: {note}"
                               for note in put_given(package, grading / "given", manifest.get("given", []))]
            cases = load_cases(grading / "hidden_cases.py")
            session = GradingSession(cases, package, grading / "reference" / "genai_hw", self.seed,
                                     data_dir=grading / "data", sandbox=self.sandbox)
            self.stack = session.stack
            # One import of the libraries (and ipykernel) for the reference's, the student's and the kernel's
            # Python, where the sandbox can (autograder.grading.zygote): it loads while the inputs are made.
            self.sandbox.preload(self.stack, kernel=True)
            # The reference is copied to its process's private folder, the snapshot taken and imported,
            # before any other student code runs.
            session.start()
        finally:  # out of the notebook's reach, whatever happened
            shutil.rmtree(grading / "reference", ignore_errors=True)
        if session.student is not None:
            self.notes += [f"genai-hw: {note}" for note in session.student.notes]
        self.sandbox.watch.phase = "package"
        try:
            session.work()
            self.case_results = session.finish()
            timeline.mark("judged")
        finally:
            self.sandbox.watch.phase = None
            self.sandbox.clear_role("package")  # detached processes too: the notebook gets the memory
        self._write_provisional()

    def _write_provisional(self) -> None:
        """A results.json with the package questions, before the notebook runs: a grading killed from outside
        (out of time, out of memory) still shows them. On Gradescope, Otter's results folder is the real one."""

        try:
            record = package_phase_results(self.source, self.case_results, self.seed)
            results = self.source.parent / "results" / "results.json"
            if results.parent.is_dir():
                results.write_text(json.dumps(record, indent=2))
        except Exception:  # noqa: BLE001 - only a provisional record; after_grading writes the real one
            pass

    def _prepare_kernel_dir(self) -> None:
        """The notebook runs in a copy of the submission that belongs to the notebook user."""
        self.kernel_dir = self.sandbox.homes["notebook"] / "submission"
        sandboxing.copy_tree(_submission_folder(self.submission_path), self.kernel_dir,
                             skip=("__pycache__", OTTER_LOG))
        answers = hide_hidden_cases(self.kernel_dir / "tests") if (self.kernel_dir / "tests").is_dir() else []
        import otter.execute.preprocessor

        otter.execute.preprocessor.EXPORT_CELL_SOURCE = EXPORT_CELL_SOURCE.replace("ANSWERS", json.dumps(answers))
        self.sandbox.give(self.kernel_dir, "notebook")

    def _install_cleanup(self) -> None:
        """No student process or file survives the grader, also when it is interrupted."""
        atexit.register(self._cleanup)
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            previous = signal.getsignal(signum)

            def handler(number, frame, previous=previous):
                if self.sandbox is not None:
                    self.sandbox.clear()  # close() follows at exit, after Otter's own clean-up
                if callable(previous):
                    previous(number, frame)
                raise SystemExit(128 + number)

            signal.signal(signum, handler)

    def _cleanup(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()

    def _merge(self, results: Any) -> None:
        from otter.test_files.abstract_test import TestCase, TestCaseResult
        from otter.test_files.exception_test import ExceptionTestFile

        from .harness import question_report

        notes = list(self.notes)
        notebook_error = results.catastrophic_error
        if notebook_error is not None or self.sandbox is None:
            results._catastrophic_error = None
            reason = self.kernel_error or (f"{type(notebook_error).__name__}: {clip(str(notebook_error), 300)}"
                                           if notebook_error is not None else "the grader could not run it")
            notes.append(f"The notebook could not be graded ({reason}); its questions score 0.")
            results.results = trusted_results(self.source / "tests", {}, "the notebook could not be run").results

        by_question: dict[str, list] = {name: [] for name in self.questions}
        if self.case_results is not None:
            for result in self.case_results:
                by_question.setdefault(result.case.question, []).append(result)
        merged = {}
        reports = {}
        for question, case_results in by_question.items():
            if case_results:
                cases = [(r.case.name, r.case.points, r.passed, r.message) for r in case_results]
            else:
                reason = "internal grader error; please tell your instructor"
                cases = [(f"{question}_grading", self.questions[question], False, reason)]
            test_cases = [TestCase(name=name, body="", hidden=True, points=points,
                                   success_message=None, failure_message=None)
                          for name, points, _, _ in cases]
            case_results_out = [
                TestCaseResult(test_case=tc, message=message, passed=passed)
                for tc, (_, _, passed, message) in zip(test_cases, cases)
            ]
            # The notebook's public checks stay visible to the student, worth 0 points:
            # they ran in the kernel, which the notebook could have tampered with.
            kernel_file = results.results.get(question)
            public = [
                TestCaseResult(test_case=replace(r.test_case, points=0), message=r.message, passed=r.passed)
                for r in (kernel_file.test_case_results if kernel_file is not None else [])
                if not r.test_case.hidden
            ]
            if case_results:
                reports[question] = question_report(question, case_results, self.seed,
                                                    [(r.passed, r.test_case.name, r.message or "") for r in public])
            test_file = ExceptionTestFile(question, f"tests/{question}.py",
                                          [r.test_case for r in public] + test_cases, all_or_nothing=False)
            test_file.test_case_results = public + case_results_out
            merged[question] = test_file
        ordered = {name: merged.pop(name, test_file) for name, test_file in results.results.items()}
        ordered.update(merged)
        results.results = dict(sorted(ordered.items(), key=lambda item: natural_key(item[0])))
        self.reports = reports

        if self.seed is not None:
            notes.insert(0, f"genai-hw: your package functions were graded on random inputs made from seed "
                            f"{self.seed} (quote it if you ask about this grading).")
            self.instructor_notes.append(f"replay this grading's package cases: {SEED_ENV_VAR}={self.seed}")
        if self.error:
            notes.append("genai-hw: part of the grading failed inside the grader, not in your code; your "
                         "instructor has the details.")
            self.instructor_notes.append("grader error:\n" + self.error)
        for note in self.instructor_notes:
            print(f"genai-hw: {note}")  # Otter's own output: the instructor's log, never the student's results
        if self.package_missing:
            from .harness import PACKAGE_MISSING

            notes.insert(0, PACKAGE_MISSING)
        results.set_output("\n".join(notes))
        timeline.mark("merged")
        results.set_plugin_data("autograder.grading.plugin.GenaiHwGrader",
                                {"seed": self.seed, "error": self.error, "plugin_file": __file__,
                                 "isolated": bool(self.sandbox and self.sandbox.isolated),
                                 "isolation": self.isolation(),
                                 "seconds": self.seconds})
