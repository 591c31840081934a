"""The trusted side of hidden-test grading.

:func:`grade_cases` makes each case's inputs from the run's seed, computes the
expected outputs with the reference package (loaded in this process, under
another module name), runs the submitted package in a separate isolated
process (:mod:`autograder.runner`), and compares. Submitted code never runs
in this process, and what it returns arrives as plain data (:mod:`autograder.wire`).

A call that raises, hangs or kills its process costs that case only: the
runner is restarted after the case that broke it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pkgutil
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import wire
from .cases import Call, Case, short
from .runner import seed_globals

REFERENCE_NAME = "genai_hw_reference"
CALL_GRACE = 2.0
"""Seconds past a call's timeout before its process is killed (a loop that ignores the alarm)."""
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


def case_seed(seed: int, case: Case) -> np.random.Generator:
    """The Generator that makes a case's inputs: replay a run with its seed."""
    return np.random.default_rng([seed, zlib.crc32(f"{case.question}/{case.name}".encode())])


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


def _reference_function(reference: types.ModuleType, dotted: str):
    module_name, _, function_name = dotted.rpartition(".")
    return getattr(sys.modules[f"{reference.__name__}.{module_name}"], function_name)


def _expected(reference: types.ModuleType, case: Case, one: Call) -> dict[str, Any]:
    function = _reference_function(reference, case.function)
    args = wire.realize(wire.loads(wire.dumps(one.args)))
    kwargs = wire.realize(wire.loads(wire.dumps(one.kwargs)))
    seed_globals()
    try:
        value = function(*args, **kwargs)
    except Exception as err:  # the reference raising is the expected outcome
        return {"status": "raised", "types": [c.__name__ for c in type(err).__mro__]}
    return {"status": "ok", "value": wire.loads(wire.dumps(value))}


def _snapshot_package(package_dir: Path, dest: Path) -> None:
    """Copy the submitted package's Python files and data, nothing executable else."""
    shutil.copytree(
        package_dir, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd")
    )


class StudentProcess:
    """Runs the cases of a job in isolated runner processes, restarting after a crash or hang."""

    def __init__(self, package_dir: Path, python: str = sys.executable, data_dir: Path | None = None) -> None:
        self.python = python
        self.data_dir = data_dir
        self.workdir = Path(tempfile.mkdtemp(prefix="genai_hw_grading_"))
        self.root = self.workdir / "pkg"
        self.root.mkdir()
        _snapshot_package(package_dir, self.root / "genai_hw")
        here = Path(__file__).resolve().parent
        shutil.copy(here / "runner.py", self.root / "genai_hw_runner.py")
        shutil.copy(here / "wire.py", self.root / "genai_hw_wire.py")

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def run(self, jobs: list[dict[str, Any]], forbid_gensim: bool = False) -> dict[int, dict[str, Any]]:
        """Return ``{case index: done record}``; broken cases get a synthetic record."""
        records: dict[int, dict[str, Any]] = {}
        pending = list(jobs)
        attempt = 0
        while pending:
            attempt += 1
            job_path = self.workdir / f"job{attempt}.json"
            results_path = self.workdir / f"results{attempt}.jsonl"
            job_path.write_text(json.dumps({"cases": pending, "forbid_gensim": forbid_gensim}), encoding="utf-8")
            results_path.touch()
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(self.workdir),
                "LANG": "C.UTF-8",
                "PYTHONHASHSEED": "0",
                "PYTHONDONTWRITEBYTECODE": "1",
                "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
                "GENAI_HW_GRADING": "1",
                "GENAI_HW_DEVICE": _student_device(),
                "GENAI_HW_DATA_DIR": str(self.data_dir or ""),
            }
            proc = subprocess.Popen(
                [self.python, "-I", str(self.root / "genai_hw_runner.py"), str(job_path),
                 str(results_path), str(self.root)],
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            by_index = {job["index"]: job for job in pending}
            current, started = None, time.monotonic()
            offset = 0
            broken: tuple[int, str] | None = None
            while True:
                finished = proc.poll() is not None
                with open(results_path, encoding="utf-8") as f:
                    f.seek(offset)
                    chunk = f.read()
                complete = chunk[: chunk.rfind("\n") + 1]
                offset += len(complete.encode("utf-8"))
                for line in complete.splitlines():
                    try:
                        event = json.loads(line)
                        index = int(event["case"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    if index not in by_index or index in records:
                        continue
                    if event.get("event") in ("start", "call"):
                        current, started = index, time.monotonic()
                    elif event.get("event") == "done":
                        records[index] = event
                        current = None
                if finished:
                    if current is not None:
                        broken = (current, "the Python process running your code ended during this case "
                                           f"(exit code {proc.returncode})")
                    break
                if current is not None:
                    budget = by_index[current]["timeout"] + CALL_GRACE
                    if time.monotonic() - started > budget:
                        broken = (current, f"did not finish within {budget:.0f} s (an infinite loop?)")
                        break
                time.sleep(0.02)
            _kill_group(proc)
            if broken is not None:
                records[broken[0]] = {"event": "done", "case": broken[0], "broken": broken[1]}
            before = len(pending)
            pending = [job for job in pending if job["index"] not in records]
            if pending and len(pending) == before:
                # The process died before starting any case (for example at interpreter start).
                for job in pending:
                    records[job["index"]] = {"event": "done", "case": job["index"],
                                             "broken": "the Python process running your code could not start"}
                pending = []
        return records


def _student_device() -> str:
    """"cuda" when the reference uses torch and a GPU is visible: a GPU grader then
    hands submitted functions CUDA tensors. Never imports torch for homeworks without it."""
    torch = sys.modules.get("torch")
    return "cuda" if torch is not None and torch.cuda.is_available() else "cpu"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _judge(case: Case, one: Call, expected: dict[str, Any], got: dict[str, Any]) -> str | None:
    """None when the submitted call's outcome matches the reference, else a message."""
    on = f"on input {one.describe()}"
    status = got.get("status")
    if status == "timeout":
        return f"{on}: did not finish within {case.timeout:g} s (an infinite loop?)"
    if status == "raised":
        names = got.get("types") or ["Exception"]
        if expected["status"] == "raised":
            if expected["types"][0] in names:
                return None
            return f"{on}: expected {expected['types'][0]} to be raised, got {names[0]}: {got.get('message', '')}"
        where = f" ({got['where']})" if got.get("where") else ""
        return f"{on}: your function raised {names[0]}: {got.get('message', '')}{where}"
    if status == "setup_error":
        return f"{on}: internal grader error preparing the inputs ({got.get('message')}); please tell your instructor"
    if status != "ok":
        return f"{on}: no result came back"
    if expected["status"] == "raised":
        returned = short(_safe_decode(got.get("value")))
        return f"{on}: expected {expected['types'][0]} to be raised, but it returned {returned}"
    try:
        value = wire.decode(got.get("value"))
    except wire.WireError as err:
        return f"{on}: the returned value could not be read ({err})"
    problem = case.compare(expected["value"], value)
    if problem:
        return f"{on}: {problem}"
    if got.get("mutated"):
        return f"{on}: your function changed its argument(s) {got['mutated']}; it must not modify its inputs"
    return None


def _safe_decode(data: Any) -> Any:
    try:
        return wire.decode(data)
    except wire.WireError:
        return "<unreadable>"


def grade_cases(
    cases: list[Case],
    package_dir: Path | None,
    reference: types.ModuleType,
    seed: int,
    python: str = sys.executable,
    data_dir: Path | None = None,
) -> list[CaseResult]:
    """Grade ``cases`` against the submitted package at ``package_dir`` (None: not uploaded).

    ``data_dir`` holds the data files that resource arguments (word vectors)
    load, for both sides. The submitted code runs in its own process while
    this one computes the expected outputs.
    """
    if data_dir is not None:
        data_dir = Path(data_dir).resolve()
        os.environ["GENAI_HW_DATA_DIR"] = str(data_dir)
    calls: dict[int, list[Call]] = {}
    expected: dict[int, list[dict[str, Any]]] = {}
    spec_errors: dict[int, str] = {}
    for index, case in enumerate(cases):
        try:
            calls[index] = case.inputs(case_seed(seed, case))
        except Exception as err:  # a bug in the spec must not cost the whole grade
            spec_errors[index] = f"internal grader error ({type(err).__name__}: {err}); please tell your instructor"

    records: dict[int, dict[str, Any]] = {}
    worker = None
    if package_dir is not None and package_dir.is_dir():
        jobs = [
            {"index": index, "function": case.function, "timeout": case.timeout,
             "check_mutation": case.check_mutation,
             "calls": [{"args": wire.encode(c.args), "kwargs": wire.encode(c.kwargs)} for c in calls[index]]}
            for index, case in enumerate(cases) if index in calls
        ]
        uses_vectors = any(isinstance(a, wire.WordVectorsSpec) for c in calls.values() for one in c
                           for a in [*one.args, *one.kwargs.values()])
        student = StudentProcess(package_dir, python=python, data_dir=data_dir)

        def run_student() -> None:
            try:
                records.update(student.run(jobs, forbid_gensim=uses_vectors))
            finally:
                student.close()

        worker = threading.Thread(target=run_student, daemon=True)
        worker.start()

    for index, case in enumerate(cases):
        if index in spec_errors:
            continue
        try:
            expected[index] = [_expected(reference, case, one) for one in calls[index]]
        except Exception as err:
            spec_errors[index] = f"internal grader error ({type(err).__name__}: {err}); please tell your instructor"
    if worker is not None:
        worker.join()

    results = []
    for index, case in enumerate(cases):
        if index in spec_errors:
            results.append(CaseResult(case, False, spec_errors[index]))
            continue
        if package_dir is None or not package_dir.is_dir():
            results.append(CaseResult(case, False, PACKAGE_MISSING))
            continue
        record = records.get(index, {"broken": "no result came back"})
        if "broken" in record:
            results.append(CaseResult(case, False, f"{case.what}: {record['broken']}"))
            continue
        if record.get("import_error"):
            module = case.function.rpartition(".")[0]
            message = f"{case.what}: could not import genai_hw.{module}: {record['import_error']}"
            results.append(CaseResult(case, False, message))
            continue
        got_calls = record.get("calls") or []
        problem = None
        for i, one in enumerate(calls[index]):
            got = got_calls[i] if i < len(got_calls) and isinstance(got_calls[i], dict) else {}
            problem = _judge(case, one, expected[index][i], got)
            if problem:
                break
        if problem:
            results.append(CaseResult(case, False, f"{case.what}: {problem}"))
        else:
            results.append(CaseResult(case, True, f"{case.what}: passed ({len(calls[index])} inputs)"))
    return results


def load_spec(spec_path: Path) -> types.ModuleType:
    """Import a homework's ``hidden_cases.py``."""
    spec = importlib.util.spec_from_file_location(f"genai_hw_cases_{spec_path.parent.name}", spec_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_cases(spec_path: Path) -> list[Case]:
    """``CASES`` of a homework's ``hidden_cases.py``."""
    return list(load_spec(spec_path).CASES)


def data_files(spec_path: Path) -> list[str]:
    """``DATA_FILES`` of a homework's ``hidden_cases.py``: files of ``genai_hw/data/`` the cases load."""
    return list(getattr(load_spec(spec_path), "DATA_FILES", []))
