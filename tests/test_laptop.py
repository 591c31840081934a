"""Grading on an instructor's laptop (issue 23): `genai-hw grade` as a normal user runs each submission's code in
Linux namespaces of its own (:mod:`autograder.grading.namespaces`), and refuses to grade where nothing can isolate it
unless told ``--unsafe-no-isolation``.

The grader here is a normal user: uid 1234, dropped to from root with ``setpriv`` (as CI runs), or the
tests' own user. Its home holds what a laptop holds and student code must not reach: a private file, the
course checkout's reference solutions, the autograder zip, Otter's folder with the hidden cases (under its
``TMPDIR``), and another process of the instructor's. Every target is first shown to be readable (or
signalable) by that user outside the sandbox, so each attack had its teeth.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from test_security import HANGS, per_question, submission

from autograder.build.release import make_submission, otter_run
from autograder.grading import sandbox
from conftest import BROKEN_BY, HW01, ROOT, SOLUTIONS, STUBS, planted_bugs, shipped, tcp_server

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="needs setpriv")]
USER = 1234 if os.geteuid() == 0 else os.geteuid()


class Laptop:
    """A normal user's home with the course on it, and ``genai-hw grade`` run as that user."""

    def __init__(self, autograder_zip: Path) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="genai-hw-laptop-"))
        shutil.copytree(ROOT / "autograder", self.home / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(autograder_zip, self.home / "ag.zip")
        (self.home / "secret.txt").write_text("the instructor's mail\n")
        course = self.home / "course" / "solutions" / "genai_hw"
        course.mkdir(parents=True)
        shutil.copy(SOLUTIONS / "ngrams.py", course / "ngrams.py")
        for folder in ("tmp", "subs"):
            (self.home / folder).mkdir()
        self.own()
        self.home.chmod(0o700)

    def own(self) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{USER}:{USER}", str(self.home)], check=True)

    def argv(self, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        base = {"HOME": str(self.home), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
                "PYTHONPATH": str(self.home), "TMPDIR": str(self.home / "tmp"), **(env or {})}
        drop = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups"] if os.geteuid() == 0 else []
        return [*drop, "env", "-i", *[f"{k}={v}" for k, v in base.items()], *argv]

    def run(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 600):
        return subprocess.run(self.argv(argv, env), cwd=self.home, capture_output=True, text=True, timeout=timeout)

    def grade(self, uploads: dict[str, Path], *args: str, env: dict[str, str] | None = None,
              python: list[str] | None = None) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
        for name, path in uploads.items():
            shutil.copy(path, self.home / "subs" / name)
        self.own()
        shutil.rmtree(self.home / "grades", ignore_errors=True)
        proc = self.run([*(python or [sys.executable, "-m", "autograder.build.cli"]), "grade", "--autograder", "ag.zip",
                         "subs", "--out", "grades", *args], env)
        rows = {}
        if (self.home / "grades" / "grades.csv").is_file():
            with open(self.home / "grades" / "grades.csv") as f:
                rows = {row["submission"]: row for row in csv.DictReader(f)}
        return proc, rows

    def processes(self) -> list[int]:
        """The user's live processes (not zombies), the grader's included if one runs."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == USER and fields["State"].split()[0] not in ("Z", "X"):
                found.append(int(pid))
        return found


@pytest.fixture
def laptop(released):
    machine = Laptop(released["zip"])
    probe = machine.run([sys.executable, "-c",
                         "from autograder.grading.namespaces import unavailable; print(unavailable())"])
    if probe.stdout.strip() != "None":
        shutil.rmtree(machine.home)
        pytest.skip(f"no user namespaces for a normal user here: {probe.stdout.strip() or probe.stderr[-300:]}")
    yield machine
    if os.geteuid() == 0:  # a failed test's leftovers must not fail the next one (the assertions name them)
        for pid in machine.processes():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(machine.home, ignore_errors=True)


PROBE = '''
def _genai_hw_probe():
    import ctypes, glob, json, os, signal, socket, subprocess, sys
    found = {{"uid": os.getuid(), "read": [], "listed": [], "wrote": [], "signalled": [], "connected": [],
              "status": {{l.split(":")[0]: l.split()[1] for l in open("/proc/self/status")
                         if l.startswith(("CapEff", "NoNewPrivs", "Seccomp:"))}}}}
    found["processes"] = []
    for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            found["processes"].append(open(f"/proc/{{pid}}/cmdline", "rb").read().replace(b"\\0", b" ").decode()[:300])
        except OSError:
            pass
    hidden = glob.glob({tmp!r} + "/genai-hw-run-*/tmp*/autograder/source/**/hidden_cases.py", recursive=True)
    for path in {read!r} + hidden:  # record what it holds: it may be a file the probe made in its own /tmp
        try:
            found["read"].append([path, open(path, "rb").read(64).hex()])
        except OSError:
            pass
    for path in {listed!r}:  # a folder on the way to what it is shown exists, with only that way in it
        try:
            found["listed"] += os.listdir(path)
        except OSError:
            pass
    mine = [globals()["__file__"]] if "__file__" in globals() else []  # the runner's snapshot of the package
    for path in {write!r}:  # the instructor's files: the test looks at them afterwards
        try:
            with open(path, "a") as f:
                f.write("# pwned")
        except OSError:
            pass
    for path in mine + [sys.prefix + "/pwned", os.path.dirname(os.__file__) + "/pwned.py"]:
        try:
            with open(path, "a") as f:
                f.write("# pwned")
            found["wrote"].append(path)
        except OSError:
            pass
    for pid in {pids!r}:
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            try:
                os.kill(pid, sig)
                found["signalled"].append(pid)
            except OSError:
                pass
    try:
        os.kill(-1, signal.SIGKILL)  # everything it may signal
    except OSError:
        pass
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2)
        found["connected"].append("tcp")
    except OSError as err:
        found["tcp"] = type(err).__name__
    libc = ctypes.CDLL(None, use_errno=True)
    found["unshare"] = libc.unshare(0x10000000)
    found["shmget"] = libc.shmget(0, 1 << 20, 0o1600)
    try:
        os.memfd_create("hidden")
        found["memfd"] = "worked"
    except OSError as err:
        found["memfd"] = type(err).__name__
    children = []
    try:
        for _ in range(300):
            children.append(subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL))
    except OSError:
        pass
    found["started"] = len(children)
    for child in children:
        child.kill()
        child.wait()
    found["sandboxes"] = sorted(glob.glob("/tmp/**/genai-hw-sandbox-*", recursive=True))
    beat = ("import os, time\\nwhile True:\\n    open({beat!r}, 'a').close()\\n    os.utime({beat!r})\\n"
            "    time.sleep(0.2)")
    subprocess.Popen([sys.executable, "-c", beat], start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    here = os.getcwd()  # last: nothing above walks it
    os.chdir(os.environ.get("TMPDIR", "/tmp"))
    for _ in range(3000):  # a tree deeper than PATH_MAX, for the grader to remove
        os.mkdir("d")
        os.chdir("d")
    os.chdir(here)
    open({report!r}, "w").write(json.dumps(found))


if not __import__("os").path.exists({report!r}):  # once: a restarted runner finds what the first wrote in /tmp
    _genai_hw_probe()
'''


def test_a_laptop_grading_shows_student_code_nothing_of_the_machine(released, laptop, report_dir, tmp_path):
    """Two submissions graded side by side (``--jobs 2``) as a normal user: the runner (at import) and the
    kernel (in a cell) of each try to read the instructor's files, the course's solutions, the autograder zip
    and the hidden cases, to list the home, to write the grading environment and the runner's snapshot, to
    signal the instructor's other process and everything they can, to reach a TCP server on this machine, to
    make a user namespace, System V shared memory or a memfd, start processes until refused, and leave a
    detached process and a folder tree deeper than PATH_MAX behind. Nothing works; each sees no process outside
    its own namespace and no sandbox but its own; both score like the stubs; nothing of theirs runs after."""
    home = laptop.home
    other = subprocess.Popen(laptop.argv(["sleep", "300"]), stdin=subprocess.DEVNULL)  # the instructor's editor
    targets = {"read": [str(home / "secret.txt"), str(home / "ag.zip"),
                        str(home / "course" / "solutions" / "genai_hw" / "ngrams.py")],
               "listed": [str(home), str(home / "course"), str(home / "tmp"), "/home", "/root", str(ROOT)],
               "write": [str(home / "secret.txt"), str(home / "pwned.txt")], "pids": [other.pid],
               "tmp": str(home / "tmp")}
    try:
        with tcp_server() as (port, connections):
            teeth = laptop.run(["sh", "-c", f"cat {' '.join(targets['read'])} >/dev/null && ls {home} >/dev/null && "
                                            f"kill -0 {other.pid}"])
            assert teeth.returncode == 0, teeth.stderr  # outside the sandbox, the same user reaches every target
            uploads = {}
            for name in ("alice", "bob"):
                code = {side: PROBE.format(report=str(report_dir / f"{name}-{side}.json"), port=port,
                                           beat=str(report_dir / f"{name}-{side}.beat"), **targets)
                        for side in ("runner", "kernel")}
                uploads[f"{name}.zip"] = submission(released, tmp_path, cells=(code["kernel"],),
                                                    append={"__init__": code["runner"]})
            proc, rows = laptop.grade(uploads, "--jobs", "2", env={"GENAI_HW_SANDBOX_SHOW": str(report_dir)})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "runs in Linux namespaces of its own" in proc.stderr
        assert other.poll() is None, "the instructor's other process was killed"
        assert connections == []
        sandboxes = {}
        for name in ("alice", "bob"):
            row = rows[f"{name}.zip"]
            assert float(row["score"]) == 0 and not row["error"] and row["isolation"] == "namespaces", row
            for side in ("runner", "kernel"):
                seen = json.loads((report_dir / f"{name}-{side}.json").read_text())
                assert seen["uid"] == USER and seen["status"]["CapEff"] == "0" * 16, seen["status"]
                assert seen["status"]["NoNewPrivs"] == "1" and seen["status"]["Seccomp"] == "2"
                hidden = {"secret.txt", "ag.zip", "course", "subs", "grades", "autograder", "solutions"}
                assert hidden.isdisjoint(seen["listed"]), seen["listed"]
                for attempt in ("wrote", "signalled", "connected"):
                    assert seen[attempt] == [], (name, side, attempt, seen[attempt])
                for path, head in seen["read"]:  # only what it wrote itself, in its own /tmp
                    real = Path(path).read_bytes()[:32].hex() if Path(path).is_file() else None
                    assert head != real and "the instructor" not in bytes.fromhex(head).decode(errors="replace"), path
                assert seen["tcp"] == seen["memfd"] == "PermissionError"
                assert seen["unshare"] == seen["shmget"] == -1
                assert 0 < seen["started"] < sandbox.MAX_PROCESSES  # its own processes and threads count
                assert len(seen["processes"]) <= 2 and not any("otter" in p or "autograder" in p or "sleep" in p
                                                               for p in seen["processes"]), seen["processes"]
                assert len(seen["sandboxes"]) == 1, seen["sandboxes"]  # its own, and no neighbour's
                sandboxes.setdefault(name, set()).add(seen["sandboxes"][0].split("/genai-hw-sandbox-")[1][:12])
        assert sandboxes["alice"].isdisjoint(sandboxes["bob"])
        beats = sorted(report_dir.glob("*.beat"))
        assert len(beats) == 4  # every detached process ran
        before = [p.stat().st_mtime for p in beats]
        time.sleep(1)
        assert [p.stat().st_mtime for p in beats] == before, "a detached student process outlived its grading"
        assert laptop.processes() == [other.pid]
        assert (home / "secret.txt").read_text() == "the instructor's mail\n" and not (home / "pwned.txt").exists()
        assert list((home / "tmp").iterdir()) == [], "a grading left files behind"
    finally:
        other.kill()


MEMORY_HOG = ("def normalize(text):\n    block = bytearray(1500 * 2**20)\n"
              "    block[::4096] = b'x' * len(block[::4096])\n")


def test_a_laptop_grading_keeps_the_limits_and_scores_as_root_does(released, solution_notebook, laptop, tmp_path):
    """The reference, the stubs, planted bugs and a package function past the memory limit: per question,
    each scores in namespaces what it scores as root (as separate users, where the tests run as root) with the
    same seed, and the memory hog is stopped with the limit's message."""
    uploads = {"reference.zip": make_submission(solution_notebook, shipped(HW01), tmp_path / "reference.zip"),
               "stubs.zip": make_submission(released["notebook"], shipped(HW01, STUBS), tmp_path / "stubs.zip")}
    for bugs in (["q2", "q8"], ["q6"]):
        name = "bugs-" + "-".join(bugs)
        uploads[f"{name}.zip"] = make_submission(solution_notebook, planted_bugs(tmp_path / name, bugs),
                                                 tmp_path / f"{name}.zip")
    (tmp_path / "hog").mkdir()
    shutil.copy(solution_notebook, tmp_path / "hog" / solution_notebook.name)
    package = tmp_path / "hog" / "genai_hw"
    shutil.copytree(shipped(HW01), package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "ngrams.py").write_text((package / "ngrams.py").read_text() + "\n" + MEMORY_HOG)
    uploads["hog.zip"] = make_submission(tmp_path / "hog" / solution_notebook.name, package, tmp_path / "hog.zip")
    proc, rows = laptop.grade(uploads, "--seed", "11", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {row["isolation"] for row in rows.values()} == {"namespaces"}
    here = {name: per_question(otter_run(released["zip"], path, tmp_path / f"root-{name}", seed=11))
            for name, path in uploads.items()}
    for name, scores in here.items():
        laptop_scores = {q: (float(rows[name][q]), possible) for q, (_, possible) in scores.items()}
        assert laptop_scores == {q: (float(got), possible) for q, (got, possible) in scores.items()}, name
    assert float(rows["reference.zip"]["score"]) == 20 and float(rows["stubs.zip"]["score"]) == 0
    for bugs in (["q2", "q8"], ["q6"]):
        broken = set().union(*(BROKEN_BY[q] for q in bugs))
        row = rows["bugs-" + "-".join(bugs) + ".zip"]
        assert all((float(row[q]) < here["reference.zip"][q][1]) == (q in broken) for q in here["reference.zip"])
    hog = json.loads(next((laptop.home / "grades").glob("*_hog/results.json")).read_text())
    q2 = next(t for t in hog["tests"] if t["name"] == "q2")
    assert float(rows["hog.zip"]["q2"]) == 0 and "used more than" in q2["output"], q2["output"][-1000:]
    assert float(rows["hog.zip"]["q1"]) == 2  # the other package questions are untouched
    assert laptop.processes() == []


def test_where_nothing_isolates_grading_is_refused_unless_asked(released, laptop, tmp_path):
    """A normal user whose machine gives no namespaces (here: the grader itself under a seccomp filter that
    refuses them, as Docker's default profile does): `genai-hw grade` refuses, says why and what to do; with
    --unsafe-no-isolation it grades and says NOT isolated on the row, in the report and in the record."""
    wrapper = [sys.executable, "-c", "import runpy, sys; from autograder.grading.seccomp import confine; confine(); "
               "sys.argv[0] = 'genai-hw'; runpy.run_module('autograder.build.cli', run_name='__main__')"]
    uploads = {"stubs.zip": make_submission(released["notebook"], shipped(HW01, STUBS), tmp_path / "stubs.zip")}
    refused, rows = laptop.grade(uploads, python=wrapper)
    assert refused.returncode == 2 and rows == {}, refused.stderr[-2000:]
    assert "submissions cannot be isolated here" in refused.stderr and "--unsafe-no-isolation" in refused.stderr
    assert "unshare" in refused.stderr  # the cause
    graded, rows = laptop.grade(uploads, "--unsafe-no-isolation", python=wrapper)
    assert graded.returncode == 0, graded.stderr[-2000:]
    assert "NOT isolated" in graded.stderr
    assert rows["stubs.zip"]["isolation"] == "none" and float(rows["stubs.zip"]["score"]) == 0
    report = (laptop.home / "grades" / "report.html").read_text()
    assert "NOT isolated" in report and '<span class="unsafe">' in report
    results = json.loads(Path(laptop.home / "grades" / "001_stubs" / "results.json").read_text())
    assert results["extra_data"]["genai_hw"]["isolation"] == "none"
    assert any("NOT isolated" in note for note in results["extra_data"]["genai_hw"]["notes"])
    assert laptop.processes() == []


def test_a_killed_laptop_grader_leaves_nothing_running_or_on_disk(released, solution_notebook, laptop, tmp_path):
    """`otter run` as a normal user killed with SIGKILL while the notebook runs (a cell that started a
    detached process and sleeps): the student processes end with it (each launcher watches the grader), and
    the next grading's reaping removes its sandbox folder."""
    nb = nbformat.read(solution_notebook, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(
        "import subprocess, time\nsubprocess.Popen(['sleep', '300'], start_new_session=True)\ntime.sleep(300)"))
    folder = tmp_path / "sleepy"
    folder.mkdir()
    nbformat.write(nb, folder / solution_notebook.name)
    shutil.copy(make_submission(folder / solution_notebook.name, shipped(HW01), folder / "sleepy.zip"),
                laptop.home / "sub.zip")
    laptop.own()
    grader = subprocess.Popen(laptop.argv([sys.executable, "-m", "otter", "run", "--no-logo", "-a", "ag.zip", "-o",
                                           str(laptop.home), "sub.zip"]), cwd=laptop.home,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        kernels: list[int] = []
        while time.monotonic() < deadline and not kernels:
            time.sleep(0.5)
            kernels = [pid for pid in laptop.processes()
                       if b"sleep\x00300" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert kernels, "the notebook never reached its sleeping cell"
        sandboxes = list((laptop.home / "tmp").rglob("genai-hw-sandbox-ns-*"))
        assert sandboxes
    finally:
        grader.kill()
        grader.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and laptop.processes():
        time.sleep(0.1)
    assert laptop.processes() == [], "student processes outlived their killed grader"
    reap = laptop.run([sys.executable, "-c",
                       "from autograder.grading.sandbox import reap_abandoned; print(reap_abandoned())"])
    assert reap.stdout.strip() == "1", reap.stderr[-1000:]
    assert not any(path.exists() for path in sandboxes)


def test_a_laptop_grading_interrupts_a_slow_cell_and_stops_a_hung_notebook(released, solution_notebook, laptop,
                                                                           tmp_path):
    """The cell time limit interrupts the kernel through its launcher (a slow cell costs nothing, the notebook
    goes on), and a notebook that swallows interrupts is stopped at the notebook's limit (only its notebook
    question is lost), as with root."""
    uploads = {}
    for name, cell in (("slow", "import time\ntime.sleep(60)"), ("deaf", HANGS["swallows_interrupts"])):
        uploads[f"{name}.zip"] = submission(released, tmp_path, cells=(cell,), package=shipped(HW01),
                                            notebook=solution_notebook)
    start = time.monotonic()
    proc, rows = laptop.grade(uploads, "--jobs", "2",
                              env={"GENAI_HW_CELL_TIMEOUT": "3", "GENAI_HW_NOTEBOOK_LIMIT": "12"})
    assert time.monotonic() - start < 60 and proc.returncode == 0, proc.stderr[-2000:]
    assert float(rows["slow.zip"]["score"]) == 20, rows["slow.zip"]
    deaf = rows["deaf.zip"]
    assert float(deaf["q9"]) == 0 and float(deaf["score"]) == 19, deaf
    assert laptop.processes() == []
