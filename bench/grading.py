"""Grading time and peak memory of each homework's submissions vs a trivial Otter assignment, and where it goes.

Budget (issue 22): the reference submission's ``otter run`` takes at most 2x
the time of a trivial one-question Otter assignment's ``otter run`` measured
in the same run (interleaved, medians of ``--repeat``), on 2 cores and on half
a CPU; the final table divides by the median of all the trivial runs of the
setting (the trivial grading takes one of two times, about 3 s apart on half
a CPU when Otter waits for its kernel to shut down, so a median of 3 can land
on either; each homework's own trivial median is in its JSON line); the
untouched stubs and a typical buggy submission take no longer than the
reference; and the whole grading peaks at 640 MiB or less, as the summed
proportional set size of its process tree (sampled every 50 ms: Otter, the
reference's process, the package runner, the kernel and what they start; a
shared library page counts once) and as the peak of the 768 MiB memory
cgroup it runs in (page cache included, as a container's limit counts it: a
grading that reads torch's libraries from disk, as a fresh container does,
takes the cgroup to its limit with cache that is reclaimed there; the
anonymous part, the processes' own memory, is sampled beside it).

Settings: ``2cpu`` runs on this machine's (2) cores; ``halfcpu`` runs every
grading, the trivial one too, in a cgroup with a CPU quota of 50 ms every
100 ms (Gradescope's half CPU), no busy neighbour.

The typical buggy submission is the reference with every exercise function
of the homework returning floating-point results 1 % off (its other results
right), uploaded with the solved notebook: every case that checks a float
fails and is judged, and the notebook's own checks fail.

For the reference it prints the timeline of the grading (median of each step's
end over the runs, seconds since ``otter run`` started; steps from
results.json's ``extra_data.genai_hw.timeline``, see
``autograder/grading/timeline.py``).

With ``--memory-mib 640 --cold`` every grading runs in a 640 MiB memory
cgroup (the budget) after the page cache was dropped: the cgroup's peak then
cannot pass 640 MiB, and what shows whether the grading fits is the rest of
the row: the same scores, no OOM kill (``oom_kills``) and the same time.

    python bench/grading.py [--homework hw01_ngrams ...] [--setting 2cpu halfcpu] [--repeat 3]
                            [--kinds reference stubs buggy] [--memory-mib 768] [--cold]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import CpuCgroup, MemoryCgroup, measure_grading, report, shipped_reference  # noqa: E402

from autograder.build import stubgen  # noqa: E402
from autograder.build.release import find_homeworks, make_submission, release, run_assign, score_of  # noqa: E402

BUDGET_RATIO = 2.0
BUDGET_PEAK_MIB = 640
CONTAINER_MIB = 768

BUG = '''

def _genai_hw_bench_bug(function):
    """Floating-point results 1 % off (bench/grading.py's typical buggy submission)."""
    import functools

    @functools.wraps(function)
    def wrong(*args, **kwargs):
        out = function(*args, **kwargs)
        if callable(getattr(out, "is_floating_point", None)) and out.is_floating_point():
            return out * 1.01
        if getattr(getattr(out, "dtype", None), "kind", "") == "f" or isinstance(out, float):
            return out * 1.01
        return out
    return wrong


for _name in NAMES:
    globals()[_name] = _genai_hw_bench_bug(globals()[_name])
'''


def trivial_assignment(tmp: Path) -> tuple[Path, Path]:
    """A one-question Otter assignment (x = 2, test x == 2) and a correct submission."""
    master = tmp / "trivial" / "trivial.ipynb"
    master.parent.mkdir()
    cells = [
        nbformat.v4.new_raw_cell("# ASSIGNMENT CONFIG\nname: trivial\nexport_cell: false\ntests:\n  ok_format: false"),
        nbformat.v4.new_raw_cell("# BEGIN QUESTION\nname: q1\npoints: 1"),
        nbformat.v4.new_raw_cell("# BEGIN SOLUTION"),
        nbformat.v4.new_code_cell("x = 2 # SOLUTION"),
        nbformat.v4.new_raw_cell("# END SOLUTION"),
        nbformat.v4.new_raw_cell("# BEGIN TESTS"),
        nbformat.v4.new_code_cell("def test_x(x):\n    assert x == 2"),
        nbformat.v4.new_raw_cell("# END TESTS"),
        nbformat.v4.new_raw_cell("# END QUESTION"),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, master)
    out = tmp / "trivial_dist"
    subprocess.run([sys.executable, "-m", "otter", "assign", "--no-pdfs", str(master), str(out)],
                   check=True, capture_output=True)
    return next((out / "autograder").glob("*.zip")), out / "autograder" / "trivial.ipynb"


def buggy_package(reference: Path, number: int, dest: Path) -> Path:
    """``reference`` (a ``genai_hw`` folder) with homework ``number``'s exercise functions made 1 % wrong."""
    shutil.copytree(reference, dest)
    for path in sorted(dest.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        names = []
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef):
                body = lines[node.lineno - 1:node.end_lineno]
                if any((m := stubgen.BEGIN.match(line)) and int(m.group("hw")) == number for line in body):
                    names.append(node.name)
        if names:
            path.write_text(source + BUG.replace("NAMES", repr(names)), encoding="utf-8")
    return dest


def submissions(tmp: Path, name: str) -> tuple[Path, dict[str, Path]]:
    """Homework ``name``'s autograder zip and its uploads: reference, stubs and buggy."""
    homework = find_homeworks(ROOT, [name])[0]
    ag_zip = release(ROOT, [name], tmp / "dist", verify=False, log=lambda *_: None)[0]
    solution_nb = run_assign(ROOT, homework, tmp / "build") / "autograder" / f"{name}.ipynb"
    student_nb = next((tmp / "dist").rglob(f"student/**/{name}.ipynb"))
    reference = shipped_reference(ROOT, homework, tmp / "reference")
    number = int(name[2:4])
    return ag_zip, {
        "reference": make_submission(solution_nb, reference, tmp / f"{name}-reference.zip"),
        "stubs": make_submission(student_nb, student_nb.parent / "genai_hw", tmp / f"{name}-stubs.zip"),
        "buggy": make_submission(solution_nb, buggy_package(reference, number, tmp / "buggy" / "genai_hw"),
                                 tmp / f"{name}-buggy.zip"),
    }


def grade(ag_zip: Path, upload: Path, out: Path, cpus: float | None, memory_mib: int = CONTAINER_MIB,
          cold: bool = False) -> dict:
    """One ``otter run`` in a memory cgroup of ``memory_mib`` (and a CPU quota of ``cpus``) where one can be
    made; ``cold``: with the page cache dropped first (a fresh container reads every library from disk)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").unlink(missing_ok=True)
    if cold:
        subprocess.run(["sync"], check=False)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    memory = MemoryCgroup(memory_mib)
    boxed = memory.available()
    cpu = CpuCgroup(cpus) if cpus else None
    if cpu is not None and not cpu.available():
        raise SystemExit("bench/grading.py: the halfcpu setting needs a CPU cgroup (root, cgroup v1 cpu or v2)")

    def wrap(command: list[str]) -> list[str]:
        command = memory.wrap(command) if boxed else command
        return cpu.wrap(command) if cpu is not None else command

    anon: list[float] = []
    done = threading.Event()

    def sample_anon() -> None:  # the cgroup's peak counts page cache too; its anonymous part, sampled
        while not done.wait(0.05):
            anon.append(memory.anon_mib() or 0.0)

    sampler = threading.Thread(target=sample_anon, daemon=True)
    if boxed:
        sampler.start()
    try:
        figures = measure_grading([sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(ag_zip),
                                   "-o", str(out), str(upload)], wrap=wrap)
        done.set()
        if boxed:
            sampler.join()
        figures["cgroup_mib"] = memory.peak_mib() if boxed else None
        figures["cgroup_anon_mib"] = max(anon, default=0.0) if boxed else None
        figures["oom_kills"] = memory.oom_kills() if boxed else None
    finally:
        memory.remove()
        if cpu is not None:
            cpu.remove()
    if figures["rc"] != 0 or not (out / "results.json").is_file():
        raise SystemExit(f"bench/grading.py: otter run failed for {upload.name}")
    results = json.loads((out / "results.json").read_text())
    figures["score"] = score_of(results)
    plugin = results.get("extra_data", {}).get("genai_hw", {})
    timeline = plugin.get("timeline") or {}
    if timeline.get("at"):
        offset = timeline["at"] - figures["started"]
        figures["steps"] = [(step, offset + at) for step, at in timeline["steps"]]
    return figures


def print_timeline(name: str, setting: str, runs: list[dict]) -> None:
    """The median end of each step (its first mark in a run) and the step's own median duration."""
    ends: dict[str, list[float]] = {}
    for run in runs:
        seen = set()
        for step, at in run.get("steps", []) + [("exit", run["seconds"])]:
            if step not in seen:
                seen.add(step)
                ends.setdefault(step, []).append(at)
    print(f"timeline {name} {setting} (reference; seconds since otter run started):")
    previous = 0.0
    for step, at in sorted(((s, statistics.median(v)) for s, v in ends.items()), key=lambda item: item[1]):
        print(f"  {step:<20} ends {at:7.2f}   +{at - previous:5.2f}")
        previous = at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--homework", nargs="+", default=None, help="default: every homework")
    parser.add_argument("--setting", nargs="+", default=["2cpu", "halfcpu"], choices=["2cpu", "halfcpu"])
    parser.add_argument("--kinds", nargs="+", default=["reference", "stubs", "buggy"],
                        choices=["reference", "stubs", "buggy"])
    parser.add_argument("--memory-mib", type=int, default=CONTAINER_MIB,
                        help=f"the memory cgroup's limit (default {CONTAINER_MIB}, Gradescope's); "
                             f"{BUDGET_PEAK_MIB}: does the grading fit in the budget, page cache included")
    parser.add_argument("--cold", action="store_true",
                        help="drop the page cache before each grading (root): libraries come from disk")
    args = parser.parse_args()
    if args.cold and os.geteuid() != 0:
        raise SystemExit("bench/grading.py: --cold drops the page cache, which needs root")
    names = args.homework or [h.name for h in find_homeworks(ROOT)]
    rows = []
    trivial_runs: dict[str, list[float]] = {setting: [] for setting in args.setting}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        trivial_zip, trivial_nb = trivial_assignment(tmp)
        for hw in names:
            ag_zip, uploads = submissions(tmp / hw, hw)
            runs = {"trivial": (trivial_zip, trivial_nb)} | {k: (ag_zip, uploads[k]) for k in args.kinds}
            for setting in args.setting:
                cpus = 0.5 if setting == "halfcpu" else None
                got: dict[str, list[dict]] = {label: [] for label in runs}
                for _ in range(args.repeat):
                    for label, (ag, upload) in runs.items():  # interleaved: each sees the same machine load
                        got[label].append(grade(ag, upload, tmp / "out" / label, cpus, args.memory_mib,
                                                args.cold))
                seconds = {label: statistics.median(r["seconds"] for r in rs) for label, rs in got.items()}
                trivial_runs[setting] += [r["seconds"] for r in got["trivial"]]
                figures: dict = {"setting": setting, "trivial_s": seconds["trivial"]}
                for label in args.kinds:
                    figures[f"{label}_s"] = seconds[label]
                    figures[f"{label}_ratio"] = seconds[label] / seconds["trivial"]
                    scores = dict.fromkeys(f"{r['score'][0]:g}/{r['score'][1]:g}" for r in got[label])
                    figures[f"{label}_score"] = ", ".join(scores)  # one score unless a run differed
                for label in ["trivial", *args.kinds]:
                    figures[f"{label}_pss_mib"] = max(r["pss_mib"] for r in got[label])
                    figures[f"{label}_rss_mib"] = max(r["rss_mib"] for r in got[label])
                    cgroup = [r["cgroup_mib"] for r in got[label] if r["cgroup_mib"] is not None]
                    figures[f"{label}_cgroup_mib"] = max(cgroup) if cgroup else "n/a"
                    anon = [r["cgroup_anon_mib"] for r in got[label] if r["cgroup_anon_mib"] is not None]
                    figures[f"{label}_cgroup_anon_mib"] = max(anon) if anon else "n/a"
                    figures[f"{label}_oom_kills"] = sum(r["oom_kills"] or 0 for r in got[label])
                figures.update({"budget_ratio": BUDGET_RATIO, "budget_peak_mib": BUDGET_PEAK_MIB,
                                "memory_mib": args.memory_mib, "cold": args.cold, "repeat": args.repeat})
                report(f"grading_{hw}_{setting}", figures)
                if "reference" in got:
                    print_timeline(hw, setting, got["reference"])
                rows.append((hw, figures))
    # The trivial grading takes one of two times: about 3 s longer (half a CPU) when Otter's kernel shutdown
    # waits, in about a third of the runs. Each homework's own median of a few runs lands on either; the
    # ratios below divide by the median of all the trivial runs of the setting (interleaved with every
    # homework's, same invocation), which the outliers do not move.
    pooled = {setting: statistics.median(runs) for setting, runs in trivial_runs.items() if runs}
    for setting, runs in trivial_runs.items():
        if runs:
            slow = sum(r > 1.3 * pooled[setting] for r in runs)
            report(f"grading_trivial_{setting}", {"runs": len(runs), "median_s": pooled[setting],
                                                  "min_s": min(runs), "max_s": max(runs), "slow_runs": slow})
    for _, f in rows:
        for k in args.kinds:
            f[k + "_ratio"] = f[k + "_s"] / pooled[f["setting"]]
        f["trivial_s"] = pooled[f["setting"]]
    print(f"\n{args.memory_mib} MiB memory cgroup{', page cache dropped before each grading' if args.cold else ''}; "
          "trivial: the median of all its runs in the setting")
    print("| homework | setting | trivial | " + " | ".join(f"{k} (x trivial; score)" for k in args.kinds)
          + " | reference tree PSS | reference cgroup peak (anonymous part) | OOM kills |")
    print("| --- " * (6 + len(args.kinds)) + "|")
    for hw, f in rows:
        cgroup = f["reference_cgroup_mib"] if "reference" in args.kinds else "n/a"
        kills = sum(f[f"{k}_oom_kills"] for k in ["trivial", *args.kinds])
        print(f"| {hw} | {f['setting']} | {f['trivial_s']:.2f} s | "
              + " | ".join(f"{f[k + '_s']:.2f} s ({f[k + '_ratio']:.2f}x; {f[k + '_score']})" for k in args.kinds)
              + (f" | {f['reference_pss_mib']:.0f} MiB | "
                 + (f"{cgroup:.0f} MiB ({f['reference_cgroup_anon_mib']:.0f})" if isinstance(cgroup, float) else cgroup)
                 + " |"
                 if "reference" in args.kinds else " | | |") + f" {kills} |")


if __name__ == "__main__":
    main()
