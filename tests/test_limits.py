"""Resource limits (issue 12): a submission that uses too much memory, output, processes or disk costs only
its own questions, and the whole grading stays inside Gradescope's 768 MiB.

Each misbehaving submission is the reference (solution notebook and package) with one misbehaviour added,
graded through the real autograder zip with ``otter run``; the grading's memory is the RSS summed over
``otter run``'s whole process tree, sampled every 20 ms (``bench/_util.measure_tree``'s sampler).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.build.release import find_homeworks, make_submission, otter_run, run_assign, score_of
from autograder.grading import sandbox
from conftest import HOMEWORKS, ROOT, shipped

sys.path.insert(0, str(ROOT / "bench"))
from _util import MemoryCgroup, _tree_rss_kib  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sandbox.isolating(), reason="the limits apply to student users (root grader)")]
BUDGET_MIB = 768
POOL = set(range(sandbox.UID_BASE, sandbox.UID_BASE + 2 * sandbox.SLOTS))


def graded(released, solution_notebook, tmp: Path, cell: str | None = None,
           append: dict[str, str] | None = None, cgroup: MemoryCgroup | None = None,
           env: dict[str, str] | None = None) -> tuple[dict, float]:
    """Grade the reference (the part its homework ships) plus ``cell`` (first in the notebook) and code
    appended to package modules (in ``cgroup``, with ``env`` added to the grader's environment); return
    results.json and the whole tree's peak memory (MiB)."""
    nb = nbformat.read(solution_notebook, as_version=4)
    if cell:
        nb.cells.insert(1, nbformat.v4.new_code_cell(cell))
    nbformat.write(nb, tmp / solution_notebook.name)
    package = tmp / "genai_hw"
    shutil.copytree(shipped(released["hw"]), package, ignore=shutil.ignore_patterns("__pycache__"))
    for module, code in (append or {}).items():
        path = package / f"{module}.py"
        path.write_text(path.read_text() + "\n" + code + "\n")
    upload = make_submission(tmp / solution_notebook.name, package, tmp / "upload.zip")
    out = tmp / "out"
    out.mkdir()
    command = [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(released["zip"]), "-o", str(out),
               str(upload)]
    proc = subprocess.Popen(cgroup.wrap(command) if cgroup else command, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kib(proc.pid))
        time.sleep(0.02)
    return json.loads((out / "results.json").read_text()), peak / 1024


def scores(results: dict) -> dict[str, tuple[float, float]]:
    return {t["name"]: (t["score"], t["max_score"]) for t in results["tests"] if "max_score" in t}


def output_of(results: dict, question: str) -> str:
    return next(t["output"] for t in results["tests"] if t["name"] == question)


def only_lost(results: dict, lost: set[str]) -> None:
    for question, (got, possible) in scores(results).items():
        if question in lost:
            assert got < possible, f"{question} should have lost points"
        else:
            assert got == possible, f"{question} lost points: {output_of(results, question)[-300:]}"


# fit_line (q1) wrapped: the misbehaviour runs before the reference's answer, in the package runner only
# (the notebook calls fit_line too, and would pay for it there).
def wrapped(code: str) -> dict[str, str]:
    body = "\n".join("        " + line for line in code.strip().splitlines())
    return {"training": f"_fit_line = fit_line\n\ndef fit_line(*args, **kwargs):\n    import sys\n"
                       f"    if sys.argv[0].endswith('genai_hw_runner.py'):  # the runner, not the kernel\n{body}\n"
                       "    return _fit_line(*args, **kwargs)\n"}


def test_a_package_function_that_allocates_gigabytes_costs_its_question(released, solution_notebook, tmp_path):
    results, peak = graded(released, solution_notebook, tmp_path,
                           append=wrapped("import numpy\nnumpy.ones(3 * 2**30 // 8)"))
    only_lost(results, {"q1"})
    assert f"used more than {sandbox.MEMORY_MIB['package']} MiB of memory" in output_of(results, "q1")
    assert peak < BUDGET_MIB, f"the grading peaked at {peak:.0f} MiB"


def test_memory_in_files_with_no_name_counts_against_the_limit(released, solution_notebook, tmp_path):
    """Memory-backed files that no folder shows (O_TMPFILE in /dev/shm, held open): no scan of /dev/shm finds
    them and no RSS shows them, yet they count (the watch reads each student process's open files)."""
    code = ("import os, time\nfds = [os.open('/dev/shm', os.O_TMPFILE | os.O_RDWR, 0o600) for _ in range(8)]\n"
            "for fd in fds:\n    for _ in range(6):\n        os.write(fd, b'x' * 2**23)\ntime.sleep(10)")
    results, peak = graded(released, solution_notebook, tmp_path, append=wrapped(code))
    only_lost(results, {"q1"})
    assert "MiB of memory" in output_of(results, "q1"), output_of(results, "q1")
    assert peak < BUDGET_MIB, f"the grading peaked at {peak:.0f} MiB"


def test_notebook_output_counts_every_field_and_message_type(released, solution_notebook, tmp_path):
    """320 MiB sent as display metadata and as updates of a display (which the text cap never saw): the
    grader keeps at most the output cap and the whole grading stays inside 768 MiB."""
    cell = ("from IPython.display import display\nblob = 'y' * 4 * 2**20\n"
            "for _ in range(40):\n    display({'text/plain': 'x'}, raw=True, metadata={'m': blob})\n"
            "handle = display('x', display_id=True)\n"
            "for _ in range(40):\n    handle.update({'text/plain': 'x'}, raw=True, metadata={'m': blob})")
    results, peak = graded(released, solution_notebook, tmp_path, cell=cell)
    only_lost(results, set())
    assert len(json.dumps(results)) < 2**20
    assert peak < BUDGET_MIB, f"the grading peaked at {peak:.0f} MiB"


def test_package_processes_that_together_go_over_cost_their_question(released, solution_notebook, tmp_path,
                                                                   maybe_container):
    """Four processes of 200 MiB each, started at once, in sessions of their own. They can allocate faster
    than the watch samples (a slow machine's CI run once saw the tree at 794 MiB), so the bound on the whole
    grading is the container's memory limit and its OOM killer, as on Gradescope: graded inside a 768 MiB
    cgroup where one can be made, the grader lives to write its results, and the package question is lost
    for memory whether the watch or the OOM killer stopped the processes."""
    code = ("import subprocess, sys, time\n"
            "kids = [subprocess.Popen([sys.executable, '-c', 'b = bytearray(200 * 2**20); import time; "
            "time.sleep(60)'], start_new_session=True) for _ in range(4)]\ntime.sleep(3)")
    results, _ = graded(released, solution_notebook, tmp_path, append=wrapped(code), cgroup=maybe_container)
    assert "error" not in results, results["error"]
    only_lost(results, {"q1"})
    assert "MiB of memory" in output_of(results, "q1")
    assert sandbox.processes_of(uids=POOL) == []


def test_a_notebook_that_allocates_gigabytes_costs_only_notebook_questions(released, solution_notebook, tmp_path,
                                                                        maybe_container):
    """Four processes of 300 MiB each from a notebook cell: a burst that can outrun the watch's sampling (a
    CI run saw the tree at 790 MiB), so, as for the package's burst, the container's limit bounds the
    grading and the grader lives to charge the notebook."""
    cell = ("import subprocess, sys, time\n"
            "kids = [subprocess.Popen([sys.executable, '-c', 'b = bytearray(300 * 2**20); import time; "
            "time.sleep(60)']) for _ in range(4)]\ntime.sleep(30)")
    results, _ = graded(released, solution_notebook, tmp_path, cell=cell, cgroup=maybe_container)
    assert "error" not in results, results["error"]
    only_lost(results, {"q9"})
    assert f"used more than {sandbox.MEMORY_MIB['notebook']} MiB of memory" in results["output"]


def test_a_print_flood_is_capped_before_it_reaches_the_grader(released, solution_notebook, tmp_path):
    """500 MiB printed: more than the kernel may hold, had IPython kept every print in its history (it does,
    since IPython 8) or ipykernel buffered it all; the kernel drops what is past the cap instead."""
    cell = "for _ in range(500):\n    print('x' * 2**20)"
    results, peak = graded(released, solution_notebook, tmp_path, cell=cell)
    only_lost(results, set())
    assert len(json.dumps(results)) < 2**20
    assert peak < BUDGET_MIB, f"the grading peaked at {peak:.0f} MiB"


def test_a_swarm_of_detached_processes_is_bounded_and_gone(released, solution_notebook, tmp_path):
    swarm = ("import subprocess, sys\nstarted = 0\nfor _ in range(400):\n    try:\n"
             "        subprocess.Popen(['sleep', '300'], start_new_session=True)\n        started += 1\n"
             "    except OSError:\n        break\n")
    results, _ = graded(released, solution_notebook, tmp_path, cell=swarm, append={"__init__": swarm})
    only_lost(results, set())
    assert sandbox.processes_of(uids=POOL) == []


def test_a_file_that_grows_without_end_is_cut_and_costs_its_question(released, solution_notebook, tmp_path):
    code = "with open('big.bin', 'wb') as f:\n    while True:\n        f.write(b'x' * 2**20)"
    results, _ = graded(released, solution_notebook, tmp_path, append=wrapped(code))
    only_lost(results, {"q1"})
    assert "File too large" in output_of(results, "q1")


def test_a_grading_killed_midway_still_shows_the_package_questions(released, solution_notebook, tmp_path):
    """The package phase writes its results.json before the notebook ends; otter_run's timeout (like
    Gradescope's) kills the grading during a notebook that sleeps, and the package points are there."""
    nb = nbformat.read(solution_notebook, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("import time\ntime.sleep(120)"))
    nbformat.write(nb, tmp_path / solution_notebook.name)
    upload = make_submission(tmp_path / solution_notebook.name, shipped(released["hw"]), tmp_path / "upload.zip")
    results = otter_run(released["zip"], upload, tmp_path / "out", timeout=25)
    got = scores(results)
    assert "error" in results and "did not finish" in results["error"]
    assert all(got[q] == (got[q][1], got[q][1]) for q in got if q != "q9"), got
    assert got["q9"][0] == 0
    assert sandbox.processes_of(uids=POOL) == []


def test_the_limits_are_what_the_docs_say():
    assert sandbox.MEMORY_MIB == {"package": 300, "notebook": 400} or os.environ.get("GENAI_HW_PACKAGE_MEMORY_MIB")
    assert sandbox.MAX_PROCESSES == 128 and sandbox.MAX_FILE_MIB == 64


# Inside a container's memory limit ------------------------------------------------------------------------
# A memory cgroup of 768 MiB around ``otter run`` is what Gradescope's default container is: every process
# of the grading together, page cache included, and the kernel's OOM killer past it.


@pytest.fixture(scope="session")
def homework_of(release_of, tmp_path_factory):
    """``homework_of(hw)``: its release and the notebook with the reference answers."""
    done: dict[str, tuple[dict, Path]] = {}

    def get(hw: str) -> tuple[dict, Path]:
        if hw not in done:
            homework = find_homeworks(ROOT, [hw])[0]
            build = run_assign(ROOT, homework, tmp_path_factory.mktemp(f"assign_{hw}"))
            done[hw] = (release_of(hw), build / "autograder" / f"{hw}.ipynb")
        return done[hw]

    return get


@pytest.fixture
def container():
    cgroup = MemoryCgroup(BUDGET_MIB)
    if not cgroup.available():
        pytest.skip("no writable memory cgroup here (root and cgroup v1, or v2 with the memory controller)")
    yield cgroup
    cgroup.remove()


@pytest.fixture
def maybe_container():
    """A 768 MiB memory cgroup where one can be made, else None (the grading then runs free)."""
    cgroup = MemoryCgroup(BUDGET_MIB)
    if not cgroup.available():
        yield None
        return
    yield cgroup
    cgroup.remove()


@pytest.mark.parametrize("hw", HOMEWORKS)
def test_the_reference_gets_the_same_full_score_inside_768_mib(hw, homework_of, container, tmp_path):
    """The score the release's own check gave the reference outside any container (every point), inside."""
    released, notebook = homework_of(hw)
    boxed, _ = graded(released, notebook, tmp_path, cgroup=container)
    free = next(m for m in released["messages"] if "reference submission scores" in m)
    got, possible = score_of(boxed)
    assert f"scores {got:g}/{possible:g} " in free, (free, got, possible)
    only_lost(boxed, set())
    assert container.oom_kills() == 0
    assert container.peak_mib() < BUDGET_MIB


# Two processes of 400 MiB each that hold their memory while both live: inside 768 MiB the OOM killer ends
# one and the other then exits, so by the next sample the notebook is back under its limit.
PAIR_CHILD = """\
import os, pathlib, time
b = bytearray(400 * 2**20)
def alive(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False
for _ in range(600):
    pids = pathlib.Path("kids.txt").read_text().split() if pathlib.Path("kids.txt").exists() else []
    if pids and not all(alive(p) for p in pids):
        break
    time.sleep(0.05)
"""
PAIR = ("import pathlib, subprocess, sys, time\n"
        f"kids = [subprocess.Popen([sys.executable, '-c', {PAIR_CHILD!r}]) for _ in range(2)]\n"
        "pathlib.Path('kids.txt').write_text(' '.join(str(k.pid) for k in kids))\n"
        "time.sleep(30)")


def test_memory_that_outruns_the_watch_meets_the_oom_killer_and_costs_the_same(homework_of, container, tmp_path):
    """With the watch sampling only every 10 s, the notebook's two processes take 800 MiB before it looks.
    Inside 768 MiB the kernel's OOM killer stops one of them (never the grader: oom_score_adj) and the
    notebook is under its limit again by the next sample; the watch still charges the notebook, from the
    container's count of OOM kills, as it does on a large machine where both live until it looks."""
    released, notebook = homework_of(HOMEWORKS[0])
    slow = {"GENAI_HW_WATCH_INTERVAL": "10"}
    (tmp_path / "free").mkdir()
    (tmp_path / "boxed").mkdir()
    boxed, _ = graded(released, notebook, tmp_path / "boxed", cell=PAIR, cgroup=container, env=slow)
    assert container.oom_kills() >= 1, "the burst should have run the container out of memory"
    free, _ = graded(released, notebook, tmp_path / "free", cell=PAIR, env=slow)
    assert "error" not in boxed, boxed["error"]  # the grader lived to write its results, not the provisional ones
    only_lost(boxed, {"q9"})
    assert f"used more than {sandbox.MEMORY_MIB['notebook']} MiB of memory" in boxed["output"]
    assert scores(boxed) == scores(free)
    assert sandbox.processes_of(uids=POOL) == []


def test_student_code_is_the_oom_killers_first_choice_and_stays_it():
    """Student processes start at oom_score_adj 1000. Root here (as in Docker by default) lacks
    CAP_SYS_RESOURCE, so it cannot forbid lowering it (here even to -1000, the floor inherited from the
    machine's own processes); the watch puts it back at its next sample."""
    code = ("import time\npath = '/proc/self/oom_score_adj'\nprint(open(path).read().strip())\n"
            "for value in ('-1000', '0'):\n    try:\n        open(path, 'w').write(value)\n"
            "        print('set', value)\n    except OSError as err:\n        print(type(err).__name__)\n"
            f"time.sleep(10 * {sandbox.WATCH_INTERVAL})\nprint(open(path).read().strip())")
    with sandbox.Sandbox() as box:
        for role in sandbox.ROLES:
            out = subprocess.run(box.command(role, [box.python, "-c", code]), capture_output=True, text=True,
                                 timeout=60, **box.popen_kwargs(role, env=box.env(role)))
            lines = out.stdout.split()
            assert lines[0] == "1000", out.stdout + out.stderr
            assert lines[-1] == "1000", out.stdout + out.stderr


@pytest.mark.skipif("/dev/shm" not in sandbox.memory_backed_roots(), reason="/dev/shm is not tmpfs here")
def test_files_in_shared_memory_count_as_memory(released, solution_notebook, tmp_path):
    """Files in /dev/shm are memory that no process shows and that outlive their writer: a package function
    that leaves 600 MiB there costs its case (and the cases after it still pass: the files are removed)."""
    code = ("import os\nfor i in range(12):\n    with open(f'/dev/shm/genai-hw-test-{os.getpid()}-{i}', 'wb') as f:\n"
            "        f.write(b'x' * 50 * 2**20)\nimport time\ntime.sleep(5)")
    results, _ = graded(released, solution_notebook, tmp_path, append=wrapped(code))
    only_lost(results, {"q1"})
    assert f"used more than {sandbox.MEMORY_MIB['package']} MiB of memory" in output_of(results, "q1")
    assert not [p for p in Path("/dev/shm").iterdir() if p.name.startswith("genai-hw-test-")]
