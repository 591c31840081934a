"""Shared fixtures: the project root, planted-bug packages, and one real release."""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions" / "genai_hw"
STUBS = ROOT / "genai_hw"
HW01 = "hw01_ngrams"

sys.path.insert(0, str(ROOT))


@functools.cache
def shipped(hw: str, package: Path = SOLUTIONS) -> Path:
    """The part of ``package`` (the reference or the stubs) that homework ``hw``'s release ships: its modules,
    the shared helpers and its data, as a student's upload of that homework carries them (made once per
    session). Uploading the whole package instead would zip 18 MB of other homeworks' data and make the
    runner import torch for homework 1."""
    from autograder.build.release import copy_package, find_homeworks, release_contents

    folder = Path(tempfile.mkdtemp(prefix=f"genai-hw-{hw}-{package.parent.name}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    folder.chmod(0o755)
    return copy_package(package, folder / "genai_hw", release_contents(ROOT, find_homeworks(ROOT, [hw])[0]))


def plant(tmp: Path, replacements: dict[str, list[tuple[str, str]]], name: str = "genai_hw",
          source: Path = SOLUTIONS) -> Path:
    """A copy of the reference package (or ``source``) with each ``old`` text replaced by ``new``.

    Every ``old`` must occur exactly once, so a planted bug never silently misses.
    """
    dest = tmp / name
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for module, pairs in replacements.items():
        path = dest / f"{module}.py"
        text = path.read_text()
        for old, new in pairs:
            assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {module}.py"
            text = text.replace(old, new)
        path.write_text(text)
    return dest


# Natural mistakes, one per exercise; used by harness and otter tests.
BUGS = {
    "q2": ("ngrams", 're.sub(r"[^A-Z]+", " ", text.upper())', 're.sub(r"[^A-Z]", " ", text.upper())'),
    "q6": ("ngrams", "symbols = sorted(distribution)", "symbols = list(distribution)"),
    "q8": ("ngrams", "vocabulary = len(ALPHABET)", "vocabulary = 26"),
}


# The questions each bug breaks: generate (q7) calls the student's own sample_next (q6).
BROKEN_BY = {"q2": {"q2"}, "q6": {"q6", "q7"}, "q8": {"q8"}}


def planted_bugs(tmp: Path, questions: list[str]) -> Path:
    """Homework 1's part of the reference with the bugs of ``questions`` planted."""
    replacements: dict[str, list[tuple[str, str]]] = {}
    for q in questions:
        module, old, new = BUGS[q]
        replacements.setdefault(module, []).append((old, new))
    return plant(tmp, replacements, source=shipped(HW01))


HW02 = "hw02_tokens_embeddings"
HW03 = "hw03_gans_vaes"
HW04 = "hw04_diffusion"
HW05 = "hw05_transformers"
HW06 = "hw06_fine_tuning"
HOMEWORKS = [HW01, HW02, HW03, HW04, HW05, HW06]


@pytest.fixture(scope="session")
def reference():
    """The reference package, loaded as the grader loads it (as ``genai_hw_reference``)."""
    from autograder.grading.harness import load_reference

    return load_reference(SOLUTIONS)


def case_scores(results) -> dict[str, tuple[float, float]]:
    """``(points got, points possible)`` per question, from the harness's case results."""
    out: dict[str, tuple[float, float]] = {}
    for r in results:
        got, possible = out.get(r.case.question, (0.0, 0.0))
        out[r.case.question] = (got + (r.case.points if r.passed else 0), possible + r.case.points)
    return out


def assert_costs_exactly(results, broken: set[str], bug: str) -> None:
    """A planted ``bug`` lost points in every question of ``broken`` and in no other."""
    for q, (got, possible) in case_scores(results).items():
        if q in broken:
            assert got < possible, f"the bug in {bug} went unnoticed in {q}"
        else:
            lost = [r.message for r in results if r.case.question == q and not r.passed]
            assert got == possible, f"{q} lost points for a bug in {bug}: {lost}"


@pytest.fixture(scope="session")
def release_of(tmp_path_factory):
    """``release_of(hw)``: one real ``genai-hw release`` per homework and session
    (otter assign, leak scan, and the reference/stub verification runs)."""
    from autograder.build.release import release

    done: dict[str, dict] = {}

    def get(hw: str) -> dict:
        if hw not in done:
            out = tmp_path_factory.mktemp(f"dist_{hw}")
            messages: list[str] = []
            zips = release(ROOT, [hw], out, verify=True, log=messages.append)
            done[hw] = {"out": out, "zip": zips[0], "messages": messages, "hw": hw,
                        "student": out / "student" / hw, "notebook": out / "student" / hw / f"{hw}.ipynb"}
        return done[hw]

    return get


@pytest.fixture(scope="session")
def released(release_of):
    return release_of(HW01)


@pytest.fixture(scope="session")
def solution_notebook(released, tmp_path_factory):
    """The notebook with the reference answers (Otter's autograder copy)."""
    from autograder.build.release import find_homeworks, run_assign

    build = tmp_path_factory.mktemp("assign")
    homework = find_homeworks(ROOT, [HW01])[0]
    out = run_assign(ROOT, homework, build)
    return out / "autograder" / f"{HW01}.ipynb"


@pytest.fixture
def report_dir():
    """A folder student code may write its findings to (the sandbox never removes it: root owns it)."""
    import secrets

    path = Path(f"/tmp/genai-hw-test-report-{secrets.token_hex(4)}")
    path.mkdir()
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def package_questions(hw: str) -> list[str]:
    from autograder.grading.harness import load_cases

    return sorted({c.question for c in load_cases(ROOT / "assignments" / hw / "hidden_cases.py")},
                  key=lambda q: int(q[1:]))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where CUDA is available."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    try:
        import torch

        available = torch.cuda.is_available()
    except ImportError:
        available = False
    if not available:
        skip = pytest.mark.skip(reason="no CUDA device here (run on a GPU grader: python -m pytest -m gpu)")
        for item in gpu_tests:
            item.add_marker(skip)


@contextlib.contextmanager
def tcp_server():
    """A TCP server on 127.0.0.1 that accepts in a thread: yields ``(port, connections)``."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    connections: list = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connections.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1], connections
    finally:
        stop.set()
        server.close()
