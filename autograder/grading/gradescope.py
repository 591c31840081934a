"""A results.json whatever happens: the autograder zip's entry point and the grader's fallback.

Otter writes ``results.json`` only when grading gets far enough: a notebook
that is not valid JSON, an upload with no notebook, or a grader that is
killed leaves none, and Gradescope then shows "The autograder failed to
execute correctly" with no score. :func:`main` (the zip's ``run_otter.py``)
writes a provisional results.json before grading starts and a clear one if
Otter fails; :func:`failure_results` is the same record for ``genai-hw
grade``.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from pathlib import Path

PROVISIONAL = ("Grading started but did not finish (it was stopped from outside). "
               "Please resubmit or tell your instructor.")


def natural_key(name: str) -> list:
    """``q2`` sorts before ``q10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _question_points(source: Path) -> dict[str, float]:
    """Every question of the assignment and its points, from the autograder's own files."""
    points: dict[str, float] = {}
    try:
        from otter.test_files.exception_test import ExceptionTestFile

        for path in sorted((source / "tests").glob("*.py")):
            points[path.stem] = float(ExceptionTestFile.from_file(str(path)).possible)
    except Exception:  # noqa: BLE001 - the record must be written anyway
        pass
    try:
        manifest = json.loads((source / "genai_hw_grading" / "manifest.json").read_text(encoding="utf-8"))
        points.update({name: float(p) for name, p in manifest["questions"].items()})
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return points


def failure_results(source: Path, message: str) -> dict:
    """A Gradescope results record: every question scores 0, with ``message`` shown to the student."""
    points = _question_points(source)
    tests = [{"name": name, "score": 0, "max_score": points[name], "output": message, "visibility": "visible"}
             for name in sorted(points, key=natural_key)]
    return {"score": 0, "output": message, "tests": tests, "error": message}


WHEN = {"visible": "shown now", "after_due_date": "shown after the due date",
        "after_published": "shown once grades are published", "hidden": "not shown to students"}
DEFAULT_VISIBILITY = {"scores": "visible", "details": "visible"}


def visibility_of(source: Path) -> dict[str, str]:
    """The homework's ``[results]`` visibility (``homework.toml``, carried in the autograder's manifest)."""
    try:
        manifest = json.loads((source / "genai_hw_grading" / "manifest.json").read_text(encoding="utf-8"))
        visibility = manifest.get("visibility") or {}
        if set(visibility) == set(DEFAULT_VISIBILITY) and all(v in WHEN for v in visibility.values()):
            return dict(visibility)
    except (OSError, ValueError, AttributeError):
        pass
    return dict(DEFAULT_VISIBILITY)


def present(tests: list[dict], reports: dict[str, str], visibility: dict[str, str]) -> list[dict]:
    """Gradescope's test entries with each question's score shown per ``visibility["scores"]`` and, for the
    package questions, their ``reports`` per ``visibility["details"]``: in the question's own entry when the
    two agree, else in an entry of its own (no points) next to a one-line summary."""
    shown = []
    for test in tests:
        name = test.get("name")
        if "max_score" in test:
            test["visibility"] = visibility["scores"]
        report = reports.get(name)
        if report is None:
            shown.append(test)
        elif visibility["details"] == visibility["scores"]:
            shown.append({**test, "output": report})
        else:
            summary = f"{report.splitlines()[0]} Which cases failed and why: {WHEN[visibility['details']]}."
            shown += [{**test, "output": summary},
                      {"name": f"{name} (details)", "visibility": visibility["details"], "output": report}]
    return shown


def package_phase_results(source: Path, case_results: list, seed: int | None) -> dict:
    """The record written once the package questions are graded, before the notebook has finished:
    what a grading stopped from outside (out of time or memory) still shows."""
    from .harness import question_report
    record = failure_results(source, "Not graded: the grading stopped before the notebook finished.")
    by_question: dict[str, list] = {}
    for result in case_results:
        by_question.setdefault(result.case.question, []).append(result)
    tests = {test["name"]: test for test in record["tests"]}
    reports = {}
    for question, results in by_question.items():
        tests[question] = {"name": question, "score": sum(r.case.points for r in results if r.passed),
                           "max_score": sum(r.case.points for r in results)}
        reports[question] = question_report(question, results, seed)
    record["tests"] = present([tests[name] for name in sorted(tests, key=natural_key)], reports,
                              visibility_of(source))
    record["score"] = sum(test["score"] for test in record["tests"])
    record["output"] = (f"genai-hw: your package functions were graded on random inputs made from seed {seed}; "
                        "the grading stopped before the notebook finished, so the notebook's questions score 0.")
    record["extra_data"] = {"genai_hw": {"seed": seed, "notes": ["provisional: the grading stopped before the "
                                                                 "notebook finished"]}}
    return record


def explain(name: str, message: str) -> str:
    """What a student can do about an error (class ``name``) that stopped Otter before any grading."""
    text = f"{name}: {message[:500]}"
    if "No gradable files" in message or "More than one" in message:
        return (f"Your upload could not be graded ({text}). Upload the zip that the notebook's last cell makes: "
                "it holds exactly one .ipynb notebook and the genai_hw/ folder.")
    if name in ("NotJSONError", "JSONDecodeError", "ValidationError", "UnicodeDecodeError") or "JSON" in text:
        return (f"Your notebook could not be read ({text}). It is not a valid .ipynb file: open it in Jupyter, "
                "save it, and export again.")
    return f"Your submission could not be graded ({text}). Please tell your instructor."


def main(autograder_dir: str = "/autograder") -> None:
    """Run Otter's autograder in ``autograder_dir``; never leave it without a results.json."""
    root = Path(autograder_dir)
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    provisional = failure_results(root / "source", PROVISIONAL)
    results.write_text(json.dumps(provisional, indent=2))
    try:
        from .sandbox import drop_special_files

        drop_special_files(root / "submission")  # before Otter reads anything of the upload
        from otter.run.run_autograder import main as run_autograder

        run_autograder(autograder_dir)
    except BaseException as err:  # noqa: BLE001 - reported in results.json
        traceback.print_exc()
        from .sandbox import SandboxError

        if isinstance(err, SandboxError):  # the grader cannot run student code: no zero for the student
            results.unlink(missing_ok=True)
            raise SystemExit(f"genai-hw: this autograder cannot grade here: {err}") from None
        message = explain(type(err).__name__, str(err))
        results.write_text(json.dumps(failure_results(root / "source", message), indent=2))
        if isinstance(err, KeyboardInterrupt):
            raise


if __name__ == "__main__":
    main(*sys.argv[1:])
