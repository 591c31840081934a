"""The ``genai-hw`` command: ``release``, ``grade`` and ``stubs``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..grading import sandbox
from . import grade as batch
from . import stubgen
from .release import PACKAGE, ReleaseError, project_root, release


def _release(args: argparse.Namespace) -> int:
    root = project_root(args.root)
    zips = release(root, args.homeworks or None, Path(args.out) if args.out else None, verify=not args.no_verify)
    out = Path(args.out) if args.out else root / "dist"
    print(f"released {len(zips)} homework(s): student files in {out / 'student'}, "
          f"autograder zips in {out / 'autograder'}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from .report import write_report

    mode = sandbox.preflight(allow_none=args.unsafe_no_isolation)
    if mode == "none":
        print(f"genai-hw grade: warning: {sandbox.NOT_ISOLATED}", file=sys.stderr)
    else:
        print(f"isolation: {sandbox.ISOLATION_WORDS[mode]}", file=sys.stderr)

    out = Path(args.out)
    submissions = batch.expand([Path(p) for p in args.submissions])
    jobs = args.jobs if args.jobs is not None else batch.default_jobs()
    print(f"grading {len(submissions)} submission(s), {jobs} at a time", file=sys.stderr)
    rows = batch.grade(Path(args.autograder), submissions, out, seed=args.seed, jobs=jobs,
                   timeout=args.timeout, progress=batch.Progress(len(submissions)),
                   unisolated=args.unsafe_no_isolation)
    csv_path = Path(args.csv) if args.csv else out / "grades.csv"
    batch.write_csv(rows, csv_path)
    report = write_report(rows, out / "report.html", title=f"{Path(args.autograder).stem}: grades")
    print(batch.table(rows))
    print(f"\nCSV: {csv_path}\nReport: {report}")
    return 1 if any(row["error"] for row in rows) else 0


def _stubs(args: argparse.Namespace) -> int:
    root = project_root(args.root)
    solutions, dest = root / "solutions" / PACKAGE, root / PACKAGE
    if args.check:
        stale = stubgen.stale_files(solutions, dest)
        if stale:
            print("genai_hw/ differs from what solutions/genai_hw/ makes: " + ", ".join(stale))
            return 1
        print("genai_hw/ is up to date")
        return 0
    stubgen.write_stubs(solutions, dest)
    print(f"wrote {dest} from {solutions}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="genai-hw", description="Build and grade the genai-hw homeworks.")
    parser.add_argument("--root", type=Path, help="project checkout (default: found from here)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="build dist/student/ and dist/autograder/<hw>-autograder.zip")
    p.add_argument("homeworks", nargs="*", metavar="HW", help="homework folders under assignments/ (default: all)")
    p.add_argument("--out", help="output folder (default: dist/ in the project)")
    p.add_argument("--no-verify", action="store_true", help="skip grading the reference and the stubs")
    p.set_defaults(func=_release)

    p = sub.add_parser("grade", help="grade submissions with otter run into a table and a CSV")
    p.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="zips, notebooks, or folders of them")
    p.add_argument("--autograder", required=True, help="the homework's autograder zip")
    p.add_argument("--out", default="grades", help="folder for each submission's results (default: grades/)")
    p.add_argument("--csv", help="CSV path (default: OUT/grades.csv)")
    p.add_argument("--seed", type=int, help="replay a grading run with this seed")
    p.add_argument("--jobs", type=int, help="gradings at a time (default: the machine's cores, fewer if its "
                                            "free memory holds fewer gradings of 768 MiB)")
    p.add_argument("--timeout", type=int, default=900, help="seconds one grading may take (default: 900)")
    p.add_argument("--unsafe-no-isolation", action="store_true",
                   help="grade even where student code cannot be isolated (not root, and no user namespaces): "
                        "it then runs as your own user; every row and the report say so")
    p.set_defaults(func=_grade)

    p = sub.add_parser("stubs", help="rewrite genai_hw/ from solutions/genai_hw/")
    p.add_argument("--check", action="store_true", help="only report whether genai_hw/ is up to date")
    p.set_defaults(func=_stubs)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ReleaseError, FileNotFoundError, ValueError, sandbox.SandboxError) as err:
        print(f"genai-hw {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
