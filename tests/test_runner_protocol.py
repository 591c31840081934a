"""The grader's side of the runner protocol holds whatever code in the runner does with the runner's key.

Code inside the runner can find the HMAC key (here as a student would: the runner's ``emit`` closure on its
main thread's stack) and sign any line. Each test plants such code in a small package and checks what the
grader does: it times calls on its own clock, sends no input before its call, bounds what it reads and keeps,
and fails a call whose mutation report is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.grading.cases import Case, call
from autograder.grading.harness import CALL_GRACE, grade_cases

HERE = Path(__file__).resolve().parent

REFERENCE = """
def double(x):
    return 2 * x
"""

ATTACK_TOOLS = '''
import hashlib, hmac, json, os, sys, threading


def runner():
    """The runner's key, output descriptor and main-thread locals: its ``emit`` closure on the main stack."""
    frame = sys._current_frames()[threading.main_thread().ident]
    while frame is not None:
        emit = frame.f_locals.get("emit")
        if callable(emit) and getattr(emit, "__closure__", None):
            cells = [cell.cell_contents for cell in emit.__closure__]
            key = next(c for c in cells if isinstance(c, bytes) and len(c) == 32)
            out = next(c for c in cells if hasattr(c, "fileno"))
            return key, out.fileno(), frame.f_locals
        frame = frame.f_back
    raise LookupError("no emit closure on the main thread's stack")


def signed(key, text):
    return (text + "\\t" + hmac.new(key, text.encode(), hashlib.sha256).hexdigest() + "\\n").encode()


def send(record):
    key, fd, _ = runner()
    os.write(fd, signed(key, json.dumps(record, separators=(",", ":"))))


def current_call():
    """(case, call) being run, in the runner's own variables (``case`` and ``number`` where all inputs came in
    the header: the attacks also run against that runner, to show what it let through)."""
    scope = runner()[2]
    if isinstance(scope.get("request"), dict):
        return scope["request"]["case"], scope["request"]["call"]
    return scope["case"]["index"], scope.get("number", 0)
'''


def package(root: Path, code: str) -> Path:
    """A ``genai_hw`` folder whose ``tiny.py`` holds the attack tools above and ``code``."""
    folder = root / "genai_hw"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "tiny.py").write_text(ATTACK_TOOLS + code)
    return folder


def cases(specs: list[tuple[str, str, float, int]], check_mutation: bool = True) -> list[Case]:
    """``(name, function, timeout, calls)``: each case calls ``tiny.<function>`` on random ints."""
    return [Case("q1", name, 1, f"tiny.{function}", what=name, timeout=timeout, check_mutation=check_mutation,
                 inputs=lambda rng, n=n: [call(int(rng.integers(1, 1000))) for _ in range(n)])
            for name, function, timeout, n in specs]


@pytest.fixture
def tiny_reference(tmp_path):
    """The reference: every function the cases name doubles its argument."""
    functions = ("double", "slow", "flood", "bloat", "nest", "huge", "forge", "big")
    return package(tmp_path / "reference", "".join(REFERENCE.replace("double", name) for name in functions))


def outcome(results, name):
    return next(r for r in results if r.case.name == name)


def grade_measured(student: Path, reference: Path, specs: list[tuple[str, str, float, int]]) -> dict:
    """Grade in a process of its own; its peak memory during the grading over its peak before, in MiB."""
    driver = f"""
import json, resource, sys
from pathlib import Path
sys.path[:0] = [{str(HERE.parent)!r}, {str(HERE)!r}]
from test_runner_protocol import cases
from autograder.grading.harness import grade_cases
specs = [tuple(s) for s in json.loads(sys.argv[1])]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = grade_cases(cases(specs), Path({str(student)!r}), Path({str(reference)!r}), 1, limit=120)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"grown_mib": (after - before) / 1024,
                  "results": {{r.case.name: [r.passed, r.message] for r in results}}}}))
"""
    done = subprocess.run([sys.executable, "-c", driver, json.dumps(specs)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


SLOW_AND_FORGING = """
def slow(x):
    import signal, time
    signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the runner's alarm is ignored
    case, number = current_call()
    end = time.monotonic() + 8
    while time.monotonic() < end:  # 8 s of work, telling the grader all the while that the call goes on
        for event in ("start", "call", "ready"):
            send({"event": event, "case": case, "call": number})
        time.sleep(0.2)
    return 2 * x


def double(x):
    return 2 * x
"""


def test_forged_events_cannot_stretch_a_call(tiny_reference, tmp_path):
    """A call that works 8 s against a 5 s limit, ignores the alarm and sends signed keep-alive events all the
    while, is stopped on the grader's clock at timeout + CALL_GRACE; the next case runs in a new runner."""
    student = package(tmp_path / "student", SLOW_AND_FORGING)
    start = time.monotonic()
    results = grade_cases(cases([("slow", "slow", 5.0, 1), ("after", "double", 5.0, 3)]), student, tiny_reference, 1)
    elapsed = time.monotonic() - start
    slow = outcome(results, "slow")
    assert not slow.passed and f"did not finish within {5 + CALL_GRACE:.0f} s" in slow.message, slow.message
    assert outcome(results, "after").passed, outcome(results, "after").message
    assert elapsed < 5 + CALL_GRACE + 8, elapsed  # given up at 7 s; then a restart, 3 calls and the reference


SNOOP = """
def double(x):
    return 2 * x


def _snoop(report):
    import gc
    _, _, scope = runner()
    header = next(value for value in scope.values() if isinstance(value, dict) and "cases" in value)
    inputs = [o for o in gc.get_objects()  # a call's arguments as the grader sends them: {"t": "tuple", ...}
              if type(o) is dict and type(o.get("args")) is dict and o["args"].get("t") == "tuple"]
    with open(report, "w") as f:
        json.dump({"cases": header["cases"], "inputs": inputs}, f, default=repr)


snooper = threading.Thread(target=_snoop, args=(REPORT,))
snooper.start()
snooper.join()  # what it reads while the package is imported (the import allowance is 60 s)
"""


def test_import_time_code_finds_no_inputs(tiny_reference, tmp_path, report_dir):
    """Code started at import (a thread, as one that would work on answers in the background) reads the header
    on the runner's stack and searches its memory for inputs: the header names the cases, without inputs."""
    report = report_dir / "header.json"
    student = package(tmp_path / "student", SNOOP.replace("REPORT", repr(str(report))))
    specs = [("first", "double", 5.0, 4), ("second", "double", 5.0, 4)]
    results = grade_cases(cases(specs), student, tiny_reference, 1)
    assert all(r.passed for r in results), [r.message for r in results]
    seen = json.loads(report.read_text())
    assert [c["function"] for c in seen["cases"]] == ["tiny.double", "tiny.double"]  # it found the header
    assert all("calls" not in c and "args" not in c for c in seen["cases"]), seen["cases"]
    assert seen["inputs"] == []


HUGE_LINE = """
def huge(x):
    _, fd, _ = runner()
    chunk = b"x" * 2**20
    for _ in range(1024):  # 1 GiB, no newline
        os.write(fd, chunk)
    return 2 * x


def double(x):
    return 2 * x
"""


def test_a_line_without_end_costs_its_case_not_the_graders_memory(tiny_reference, tmp_path):
    """A function that writes 1 GiB without a newline into the runner's output: the grader reads 1 MiB of it,
    stops the runner, fails that case, and its own peak memory hardly moves."""
    student = package(tmp_path / "student", HUGE_LINE)
    graded = grade_measured(student, tiny_reference, [("huge", "huge", 30.0, 1), ("after", "double", 5.0, 3)])
    huge, after = graded["results"]["huge"], graded["results"]["after"]
    assert not huge[0] and "sent more than 1 MB for one result" in huge[1], huge
    assert after[0], after
    assert graded["grown_mib"] < 100, graded["grown_mib"]


NESTED = """
def nest(x):
    send_nested()
    return 2 * x


def send_nested():
    key, fd, _ = runner()
    os.write(fd, signed(key, "[" * 200_000 + "]" * 200_000))


send_nested()  # at import, before the runner is ready
"""


def test_a_signed_line_nested_too_deep_is_ignored(tiny_reference, tmp_path):
    """A signed line of JSON nested 200,000 deep (json.loads raises RecursionError), at import and during a call:
    the grader skips it, and every case is graded without waiting for a timeout."""
    student = package(tmp_path / "student", NESTED)
    start = time.monotonic()
    results = grade_cases(cases([("nest", "nest", 5.0, 3), ("more", "nest", 5.0, 3)]), student, tiny_reference, 1)
    assert all(r.passed for r in results), [r.message for r in results]
    assert time.monotonic() - start < 20


FLOOD = """
def flood(x):
    key, fd, _ = runner()
    payload = "[" + ",".join(["{}"] * 300_000) + "]"  # 0.9 MB that parse into 300,000 dicts (about 20 MB)
    for _ in range(5):
        for case in range(12):
            os.write(fd, signed(key, f'{{"event":"done","case":{case},"calls":{payload}}}'))
            os.write(fd, signed(key, f'{{"event":"outcome","case":{1000 + case},"call":0,"value":{payload}}}'))
    return 2 * x


def bloat(x):
    key, fd, _ = runner()
    case, number = current_call()
    payload = "[" + ",".join(["{}"] * 300_000) + "]"
    os.write(fd, signed(key, f'{{"event":"outcome","case":{case},"call":{number},"status":"ok",'
                             f'"mutated":[],"value":{payload}}}'))
    return 2 * x


def double(x):
    return 2 * x
"""


def test_a_flood_of_signed_lines_does_not_grow_the_graders_memory(tiny_reference, tmp_path):
    """One function floods 120 signed lines of 0.9 MB each that parse into 20 MB apiece (records for every case,
    outcomes of calls never asked for); others answer their own calls with such a line. The grader's peak
    memory grows by less than 100 MiB, the outcomes it would have to keep cost their cases only, and the other
    cases pass."""
    student = package(tmp_path / "student", FLOOD)
    specs = [("flood", "flood", 30.0, 1), *[(f"bloat{i}", "bloat", 5.0, 2) for i in range(3)],
             *[(f"plain{i}", "double", 5.0, 3) for i in range(8)]]
    graded = grade_measured(student, tiny_reference, specs)
    results = graded["results"]
    assert graded["grown_mib"] < 100, graded["grown_mib"]
    assert results["flood"][0], results["flood"]
    for i in range(3):
        assert not results[f"bloat{i}"][0] and "more than the grader keeps" in results[f"bloat{i}"][1]
    assert all(results[f"plain{i}"][0] for i in range(8)), results


FORGE = """
def forge(x):
    case, number = current_call()
    send({"event": "outcome", "case": case, "call": number, "status": "ok", "value": 2 * x, **REPORT})
    import time
    time.sleep(3)  # the runner's own outcome (with its report) comes too late to count
    return 2 * x
"""


@pytest.mark.parametrize("report", [{}, {"mutated": [5]}, {"mutated": "none"}])
def test_a_call_without_a_mutation_report_fails(tiny_reference, tmp_path, report):
    """A signed outcome with the right value but no well-formed ``mutated`` list costs its case where the case
    checks mutation, and only there."""
    student = package(tmp_path / "student", FORGE.replace("REPORT", repr(report)))
    checked = grade_cases(cases([("forge", "forge", 5.0, 1)]), student, tiny_reference, 1)
    assert not checked[0].passed and "report for this call was incomplete" in checked[0].message, checked[0].message
    unchecked = grade_cases(cases([("forge", "forge", 5.0, 1)], check_mutation=False), student, tiny_reference, 1)
    assert unchecked[0].passed, unchecked[0].message


BIG = """
def big(x):
    return list(range(300_000))  # 2 MB of JSON


def double(x):
    return 2 * x
"""


def test_a_large_return_value_comes_back_as_a_stand_in(tiny_reference, tmp_path):
    """An honest function that returns 2 MB of data: the runner sends a stand-in that says so (its line stays
    under the grader's bound), which fails that case; the runner goes on with the next."""
    student = package(tmp_path / "student", BIG)
    results = grade_cases(cases([("big", "big", 5.0, 2), ("after", "double", 5.0, 3)]), student, tiny_reference, 1)
    big = outcome(results, "big")
    assert not big.passed and "output over 256 KB" in big.message, big.message
    assert outcome(results, "after").passed, outcome(results, "after").message
