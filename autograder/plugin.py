"""The Otter plugin that grades the package questions outside the notebook.

Otter runs the submitted notebook in a Jupyter kernel, and the hidden tests
would run there too, where the notebook could have monkeypatched anything.
This plugin does the package grading *before* the kernel starts:

``before_execution`` (in Otter's own process, no student code has run yet):
  loads the hidden cases and the reference from the autograder's
  ``genai_hw_grading/`` folder, deletes the reference from disk so the
  notebook cannot read it, and starts grading the submitted ``genai_hw/`` in
  an isolated process (:mod:`autograder.harness`): the package is copied and
  imported, and the process holds its results channel's key, before the
  notebook starts. The cases then run, and the expected outputs are
  computed in a thread of this process, while the notebook runs; expected
  values never touch the disk. It sets ``GENAI_HW_GRADING=1`` so the notebook
  runs its cheap mode. It also makes Otter read the kernel's pickled
  results with an unpickler that accepts only Otter's result classes.

``after_grading``: finishes the package grading (a case that broke the
  isolated process is rerun only now, after the notebook), replaces whatever
  the kernel reported for the package
  questions with the plugin's results, and records the seed that replays them.
  If the notebook itself failed, the package points are kept and the notebook
  questions get 0 with the reason.

It never raises: a grader error becomes a failed case with a message.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import secrets
import shutil
import threading
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from otter.plugins import AbstractOtterPlugin

GRADING_DIR = "genai_hw_grading"
CELL_TIMEOUT = 120
"""Seconds a notebook cell may run under the grader before it is interrupted."""
SEED_ENV_VAR = "GENAI_HW_SEED"

_SAFE_GLOBALS = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "dict"), ("builtins", "list"),
    ("builtins", "tuple"), ("builtins", "str"), ("builtins", "int"), ("builtins", "float"),
    ("builtins", "bool"), ("builtins", "NoneType"), ("collections", "OrderedDict"),
}


class _ResultsUnpickler(pickle.Unpickler):
    """Unpickles Otter's GradingResults and nothing that could run code."""

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(("otter.test_files", "nbformat")) or (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the notebook's results may not contain {module}.{name}")


class _SafePickle:
    """Stands in for the ``pickle`` module inside ``otter.execute``."""

    HIGHEST_PROTOCOL = pickle.HIGHEST_PROTOCOL
    dump = staticmethod(pickle.dump)
    dumps = staticmethod(pickle.dumps)

    @staticmethod
    def load(file: io.BufferedReader) -> Any:
        return _ResultsUnpickler(file).load()


def _harden_otter() -> None:
    """Make Otter's notebook run survive what a notebook can do to it.

    - The kernel's pickled results are read with an unpickler that builds only
      Otter's result classes (a notebook could otherwise make Otter's own
      process run code while loading them).
    - A cell that runs past CELL_TIMEOUT is interrupted and counts as an error,
      instead of hanging the grader.
    - A kernel that dies (``os._exit`` in a cell, a crash, out of memory) ends
      the run instead of raising out of Otter, which would leave no
      results.json; the plugin then reports the notebook as failed and keeps
      the package points.
    """
    import otter.execute
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbconvert.preprocessors import ExecutePreprocessor

    otter.execute.pickle = _SafePickle
    if getattr(ExecutePreprocessor.preprocess, "_genai_hw", False):
        return
    original = ExecutePreprocessor.preprocess

    def preprocess(self, nb, resources=None, km=None):
        self.timeout = CELL_TIMEOUT
        self.interrupt_on_timeout = True
        try:
            return original(self, nb, resources, km)
        except (DeadKernelError, CellTimeoutError, RuntimeError) as err:
            nb.metadata["genai_hw_kernel_error"] = f"{type(err).__name__}: {str(err)[:300]}"
            return nb, resources

    preprocess._genai_hw = True
    ExecutePreprocessor.preprocess = preprocess


def _natural_key(name: str) -> list:
    """``q2`` sorts before ``q10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class GenaiHwGrader(AbstractOtterPlugin):
    """Grades ``genai_hw`` functions against the reference in an isolated process."""

    def __init__(self, submission_path: str, submission_metadata: dict, plugin_config: dict) -> None:
        super().__init__(submission_path, submission_metadata, plugin_config)
        self.case_results: list | None = None
        self.seed: int | None = None
        self.error: str | None = None
        self.questions: dict[str, Any] = {}
        self.package_missing = False
        self.session = None
        self.worker: threading.Thread | None = None

    def _grading_dir(self) -> Path:
        return Path(self.submission_path).resolve().parent.parent / "source" / GRADING_DIR

    def before_execution(self, submission: Any) -> Any:
        os.environ["GENAI_HW_GRADING"] = "1"
        try:
            _harden_otter()
        except Exception:  # pragma: no cover - Otter's layout is pinned
            pass
        try:
            self._grade_package()
        except Exception:
            self.error = traceback.format_exc(limit=5)
        return submission

    def _grade_package(self) -> None:
        from .harness import GradingSession, load_cases, load_reference

        grading = self._grading_dir()
        manifest = json.loads((grading / "manifest.json").read_text(encoding="utf-8"))
        self.questions = manifest["questions"]
        try:
            cases = load_cases(grading / "hidden_cases.py")
            reference = load_reference(grading / "reference" / "genai_hw")
        finally:  # out of the notebook's reach, whatever happened
            shutil.rmtree(grading / "reference", ignore_errors=True)
        self.seed = int(os.environ.get(SEED_ENV_VAR) or secrets.randbelow(2**31))
        package = Path(self.submission_path).resolve().parent / "genai_hw"
        self.package_missing = not package.is_dir()
        self.session = GradingSession(cases, package, reference, self.seed, data_dir=grading / "data")
        self.session.start()  # the submitted package is copied and imported before the notebook runs
        self.worker = threading.Thread(target=self.session.work, daemon=True)
        self.worker.start()  # results and expected outputs are gathered while the notebook runs

    def after_grading(self, results: Any) -> None:
        try:
            if self.session is not None:
                self.worker.join()
                self.case_results = self.session.finish()
        except Exception:
            self.error = (self.error or "") + traceback.format_exc(limit=5)
        try:
            self._merge(results)
        except Exception:
            results.set_output("genai-hw grader error while merging results:\n" + traceback.format_exc(limit=5))

    def _merge(self, results: Any) -> None:
        from otter.test_files.abstract_test import TestCase, TestCaseResult
        from otter.test_files.exception_test import ExceptionTestFile

        notes = []
        notebook_error = results.catastrophic_error
        if notebook_error is not None:
            results._catastrophic_error = None
            results.results = {}
            notes.append(f"The notebook could not be graded ({type(notebook_error).__name__}: "
                         f"{str(notebook_error)[:300]}); its questions score 0.")
            tests_dir = Path(self.submission_path).resolve().parent.parent / "source" / "tests"
            for path in sorted(tests_dir.glob("*.py")):
                if path.stem in self.questions:
                    continue
                test_file = ExceptionTestFile.from_file(str(path))
                test_file.test_case_results = [
                    TestCaseResult(test_case=tc, message="the notebook could not be run", passed=False)
                    for tc in test_file.test_cases
                ]
                results.results[test_file.name] = test_file

        by_question: dict[str, list] = {name: [] for name in self.questions}
        if self.case_results is not None:
            for result in self.case_results:
                by_question.setdefault(result.case.question, []).append(result)
        merged = {}
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
            test_file = ExceptionTestFile(question, f"tests/{question}.py",
                                          [r.test_case for r in public] + test_cases, all_or_nothing=False)
            test_file.test_case_results = public + case_results_out
            merged[question] = test_file
        ordered = {name: merged.pop(name, test_file) for name, test_file in results.results.items()}
        ordered.update(merged)
        results.results = dict(sorted(ordered.items(), key=lambda item: _natural_key(item[0])))

        if self.seed is not None:
            notes.insert(0, f"genai-hw: package functions graded with seed {self.seed} "
                            f"(replay: {SEED_ENV_VAR}={self.seed}).")
        if self.error:
            notes.append("genai-hw grader error:\n" + self.error)
        if self.package_missing:
            from .harness import PACKAGE_MISSING

            notes.insert(0, PACKAGE_MISSING)
        results.set_output("\n".join(notes))
        results.set_plugin_data("autograder.plugin.GenaiHwGrader", {"seed": self.seed, "error": self.error})
