"""Build the student release and the Gradescope autograder zips, verifying as it goes.

For each homework ``assignments/<hw>/`` (a master notebook ``<hw>.ipynb``,
``hidden_cases.py`` and ``homework.toml``, which names the ``genai_hw``
modules with its exercises, the data files it uses and, under ``given``, the
modules of an earlier homework that it hands out solved, such as homework 6's
``given = ["attention", "sampling"]``, homework 5's TinyGPT):

1. check that ``genai_hw/`` is exactly what :mod:`autograder.build.stubgen` makes,
   and that the homework's modules, notebook and hidden cases use only what
   its release carries (:func:`release_contents`); a homework with given
   modules says that it hands out their homework's solutions, so that it is
   released only after that homework is due (:func:`given_notice`);
2. run ``otter assign`` on a build copy of the master notebook;
3. check that each package question's points equal its hidden cases' points;
4. write ``dist/student/<hw>/`` (student notebook, the homework's part of
   ``genai_hw/``: its modules' stubs, its given modules solved under a header
   that says so (:func:`given_source`), the shared helpers, its data;
   requirements) and ``dist/student/<hw>.zip``, then scan them for leaks
   (solution code, hidden tests, the reference, solution markers);
5. write ``dist/autograder/<hw>-autograder.zip``: Otter's zip plus this
   package's grading code (the plugin and harness), the hidden cases, the
   data they load, the reference of the homework's modules and its given
   ones, and the given modules as handed out (``genai_hw_grading/given/``,
   named in the manifest), which the plugin puts in every submission's
   ``genai_hw/`` over the uploaded copies before anything of it runs;
6. grade the reference submission (must score 100 %) and the untouched
   stubs (must score 0, and grading must complete) with ``otter run``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import stubgen
from ..grading.cases import clip
from ..grading.gradescope import DEFAULT_VISIBILITY, WHEN

PACKAGE = "genai_hw"
AUTOGRADER_DIR = Path(__file__).resolve().parents[1]
GRADING_DIR = AUTOGRADER_DIR / "grading"
"""The grading package: the autograder zip carries it whole, as ``autograder/grading/`` (nothing of the build)."""
PLUGIN = "autograder.grading.plugin.GenaiHwGrader"
RUN_OTTER = """\
\"\"\"Gradescope's entry point: Otter's autograder, and a results.json whatever happens.\"\"\"
import sys

sys.path.insert(0, "/autograder/source")
from autograder.grading.gradescope import main  # noqa: E402

if __name__ == "__main__":
    main("/autograder")
"""
SETUP_SANDBOX = """
# genai-hw: student code runs as unprivileged users (no account needed, see autograder/grading/sandbox.py);
# they must be able to run Miniforge's Python, which lives under /root.
chmod o+x /root
chmod -R o+rX /root/miniforge3
mamba run -n otter-env python -c "import sys; sys.path.insert(0, '/autograder/source'); \\
from autograder.grading.sandbox import Sandbox; Sandbox().close(); print('genai-hw sandbox: ok')"
"""


VISIBILITIES = tuple(WHEN)
"""Gradescope's visibility settings for one test of results.json."""


class ReleaseError(RuntimeError):
    """A release that must not be shipped, with the reason."""


@dataclass
class Homework:
    name: str
    folder: Path

    @property
    def master(self) -> Path:
        return self.folder / f"{self.name}.ipynb"

    @property
    def cases_file(self) -> Path:
        return self.folder / "hidden_cases.py"

    @property
    def spec_file(self) -> Path:
        return self.folder / "homework.toml"


@dataclass
class Contents:
    """What one homework's release carries of ``genai_hw``: ``modules`` (with this homework's exercises),
    ``shared`` (the helpers without exercises, in every release) and ``data`` (files of ``genai_hw/data/``)."""

    modules: list[str]
    shared: list[str]
    data: list[str]
    visibility: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VISIBILITY))
    """When students see each question's score and the hidden cases' details (Gradescope's visibility)."""
    given: dict[str, str] = field(default_factory=dict)
    """The modules of an earlier homework that this one hands out solved (``given`` in homework.toml), each
    with its text as every copy of the release carries it (:func:`given_source`)."""

    def ships(self, module: str) -> bool:
        return module in self.modules or module in self.shared or module in self.given


def exercise_modules(package: Path) -> dict[str, bool]:
    """Every module of ``package`` (a ``solutions/genai_hw``) and whether it holds exercises."""
    return {path.stem: any(stubgen.BEGIN.match(line) for line in path.read_text(encoding="utf-8").splitlines())
            for path in sorted(package.glob("*.py"))}


def region_homeworks(source: str) -> set[int]:
    """The homeworks whose exercises ``source`` holds: the ``hwNN`` of its BEGIN SOLUTION markers."""
    return {int(m.group("hw")) for line in source.splitlines() if (m := stubgen.BEGIN.match(line))}


def _homeworks(numbers: list[int]) -> str:
    """``homework 5``, ``homeworks 4 and 5``."""
    return ("homework " if len(numbers) == 1 else "homeworks ") + " and ".join(str(n) for n in numbers)


def given_source(source: str, module: str) -> str:
    """A module of an earlier homework as a later one hands it out: its reference ``source`` without the
    solution markers, under a header that says whose solution it is and that the grader uses its own copy."""
    header = (f"# Given in this homework: {_homeworks(sorted(region_homeworks(source)))}'s solution of "
              f"{module}.py (its questions are not graded here).\n"
              "# Keep it as it is: the grader puts this same copy in place of the one you upload.\n")
    return header + "".join(line for line in source.splitlines(keepends=True)
                            if not (stubgen.BEGIN.match(line) or stubgen.END.match(line)))


def _package_imports(tree: ast.AST, relative: bool) -> set[str]:
    """The ``genai_hw`` submodules that ``tree`` imports (relatively for the package's own modules)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if relative and node.level == 1 or not relative and node.level == 0 and node.module \
                    and node.module.split(".")[0] == PACKAGE:
                parts = (node.module or "").split(".")[(0 if relative else 1):]
                found |= {parts[0]} if parts and parts[0] else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import) and not relative:
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(PACKAGE + ".")}
    return found


def question_order(notebook: Path) -> list[str]:
    """The names of the master notebook's questions (``# BEGIN QUESTION`` cells), in notebook order."""
    names = []
    for cell in json.loads(notebook.read_text(encoding="utf-8")).get("cells", []):
        body = "".join(cell.get("source", ""))
        if body.lstrip().startswith("# BEGIN QUESTION"):
            match = re.search(r"(?m)^name:\s*(\S+)", body)
            names.append(match.group(1) if match else "?")
    return names


def _notebook_imports(notebook: Path) -> set[str]:
    found: set[str] = set()
    for cell in json.loads(notebook.read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        code = "\n".join(line for line in "".join(cell.get("source", "")).splitlines()
                         if not line.lstrip().startswith(("%", "!")))
        try:
            found |= _package_imports(ast.parse(code), relative=False)
        except SyntaxError:
            continue
    return found


def release_contents(root: Path, homework: Homework) -> Contents:
    """Read and check ``homework.toml``: what the homework's release carries. Raises ReleaseError.

    ``given`` (optional) names modules that the homework hands out solved: exercise modules of earlier
    homeworks (all their BEGIN SOLUTION markers name one), none of them among its own ``modules``. The
    homework's modules, the given ones, its notebook and its hidden cases may use only the modules it ships
    (its own, the given ones and the shared helpers), so a homework that builds on an earlier one imports
    given modules or helpers, never the earlier homework's unsolved stubs.
    """
    solutions = root / "solutions" / PACKAGE
    where = homework.spec_file.relative_to(root) if homework.spec_file.is_relative_to(root) else homework.spec_file
    if not homework.spec_file.is_file():
        raise ReleaseError(f"{homework.name}: {where} is missing; it names the genai_hw modules with the "
                           "homework's exercises and the data files it uses, e.g.\n"
                           'modules = ["ngrams"]\ndata = ["moby_dick.txt"]')
    try:
        spec = tomllib.loads(homework.spec_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ReleaseError(f"{where}: not valid TOML ({err})") from None
    unknown_keys = sorted(set(spec) - {"modules", "given", "data", "results"})
    lists = {key: spec.get(key, []) for key in ("modules", "given", "data")}
    bad = [key for key, value in lists.items() if not isinstance(value, list)
           or not all(isinstance(v, str) for v in value)]
    if unknown_keys or bad or not lists["modules"]:
        raise ReleaseError(f"{where}: expected `modules` (a non-empty list of module names), `data` (a list of "
                           "file names) and optionally `given` (a list of an earlier homework's modules, handed "
                           f"out solved), got keys {sorted(spec)}"
                           + "".join(f"; `{key}` is {lists[key]!r}, not a list of names" for key in bad))
    results = spec.get("results", {})
    visibility = {**DEFAULT_VISIBILITY, **(results if isinstance(results, dict) else {})}
    if not isinstance(results, dict) or set(visibility) != set(DEFAULT_VISIBILITY) \
            or any(value not in VISIBILITIES for value in visibility.values()):
        raise ReleaseError(f"{where}: [results] takes `scores` and `details`, each one of {list(VISIBILITIES)}; "
                           f"got {results!r}")
    available = exercise_modules(solutions)
    problems = []
    for key, label in (("modules", "module"), ("given", "given module")):
        for module in lists[key]:
            if module not in available:
                problems.append(f"{label} {module!r} is not in solutions/{PACKAGE}/ (has {sorted(available)})")
            elif not available[module]:
                problems.append(f"{label} {module!r} has no exercises; shared helpers ship with every homework")
    for name in lists["data"]:
        if not (solutions / "data" / name).is_file():
            problems.append(f"data file {name!r} is not in solutions/{PACKAGE}/data/")
    number = re.match(r"hw(\d+)", homework.name)
    tags = {module: region_homeworks((solutions / f"{module}.py").read_text(encoding="utf-8"))
            for module in lists["modules"] + lists["given"] if available.get(module)}
    for module in lists["modules"]:
        if number and module in tags and tags[module] != {int(number.group(1))}:
            problems.append(f"module {module!r} holds exercises of "
                            f"{', '.join(f'hw{t:02d}' for t in sorted(tags[module]))} (its BEGIN SOLUTION markers), "
                            f"not only of {homework.name}")
    for module in lists["given"]:
        if module in lists["modules"]:
            problems.append(f"module {module!r} is in both `modules` and `given`: a homework hands out solved "
                            "only modules of earlier homeworks, never its own")
        elif number and module in tags and max(tags[module]) >= int(number.group(1)):
            problems.append(f"given module {module!r} holds exercises of "
                            f"{', '.join(f'hw{t:02d}' for t in sorted(tags[module]))} (its BEGIN SOLUTION markers), "
                            f"not only of homeworks before {homework.name}")
    if problems:
        raise ReleaseError(f"{where}: " + "; ".join(problems))
    given = {module: given_source((solutions / f"{module}.py").read_text(encoding="utf-8"), module)
             for module in lists["given"]}
    contents = Contents(list(lists["modules"]), [m for m, exercises in available.items() if not exercises],
                        list(lists["data"]), visibility, given)
    uses = {f"solutions/{PACKAGE}/{m}.py": _package_imports(ast.parse((solutions / f"{m}.py").read_text()), True)
            for m in contents.modules + list(contents.given) + contents.shared}
    names = question_order(homework.master)
    if names != [f"q{i}" for i in range(1, len(names) + 1)]:
        problems.append(f"{homework.master.name}: questions must be named q1, q2, ... in notebook order, "
                        f"found {', '.join(names)}")
    uses[homework.master.name] = _notebook_imports(homework.master)
    from ..grading.harness import load_spec

    uses["hidden_cases.py"] = {c.function.split(".")[0] for c in load_spec(homework.cases_file).CASES}
    for user, modules in uses.items():
        missing = sorted(m for m in modules if m in available and not contents.ships(m))
        if missing:
            problems.append(f"{user} uses genai_hw.{missing[0]}, which this homework's release does not ship "
                            "(a homework may import only its own modules, the shared helpers and the modules it "
                            "gives, `given` in homework.toml; to build on an earlier homework, give its module or "
                            "move what is needed into a helper without exercises)")
    if problems:
        raise ReleaseError(f"{homework.name}: " + "; ".join(problems))
    return contents


def given_notice(root: Path, homework: Homework, contents: Contents) -> str | None:
    """What ``genai-hw release`` says of a homework with given modules: whose solutions it hands out, and
    that it must not be released before that homework is due (None: it gives none)."""
    if not contents.given:
        return None
    numbers = sorted(set().union(*(region_homeworks((root / "solutions" / PACKAGE / f"{m}.py").read_text(
        encoding="utf-8")) for m in contents.given)))
    files = ", ".join(f"{PACKAGE}/{m}.py" for m in contents.given)
    due = " and ".join(f"hw{n:02d}" for n in numbers) + (" is" if len(numbers) == 1 else " are")
    return f"{homework.name} hands out {_homeworks(numbers)}'s solutions ({files}): release it after {due} due."


def copy_package(package: Path, dest: Path, contents: Contents, code_only: bool = False) -> Path:
    """The part of ``package`` (``genai_hw/`` or ``solutions/genai_hw/``) that a homework carries, at ``dest``.

    The given modules are the same solved copies whichever package this is (``contents.given``). The
    package docstring and ``data/README.md`` keep only the entries for what is shipped.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for module in contents.shared + contents.modules:
        text = (package / f"{module}.py").read_text(encoding="utf-8")
        if module == "__init__":
            text = "".join(line for line in text.splitlines(keepends=True)
                           if not (m := re.match(r"- ``(\w+)``", line)) or contents.ships(m.group(1)))
        (dest / f"{module}.py").write_text(text, encoding="utf-8")
    for module, text in contents.given.items():
        (dest / f"{module}.py").write_text(text, encoding="utf-8")
    if code_only:
        return dest
    (dest / "data").mkdir(exist_ok=True)
    for name in contents.data:
        shutil.copyfile(package / "data" / name, dest / "data" / name)
    readme = package / "data" / "README.md"
    if readme.is_file():
        head, *sections = re.split(r"(?m)^## ", readme.read_text(encoding="utf-8"))
        kept = [s for s in sections if s.split("\n", 1)[0].strip() in contents.data]
        (dest / "data" / "README.md").write_text(head + "".join("## " + s for s in kept), encoding="utf-8")
    return dest


def project_root(start: Path | None = None) -> Path:
    """The checkout that holds ``assignments/``, ``solutions/`` and ``genai_hw/``."""
    candidates = [start] if start else [Path.cwd(), AUTOGRADER_DIR.parent]
    for candidate in candidates:
        for folder in [candidate, *candidate.parents]:
            if (folder / "assignments").is_dir() and (folder / "solutions" / PACKAGE).is_dir():
                return folder
    raise ReleaseError("cannot find the project root (a folder with assignments/ and solutions/genai_hw/)")


def find_homeworks(root: Path, names: list[str] | None = None) -> list[Homework]:
    available = {
        p.name: Homework(p.name, p)
        for p in sorted((root / "assignments").iterdir())
        if (p / f"{p.name}.ipynb").is_file()
    }
    if not names:
        return list(available.values())
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ReleaseError(f"unknown homework(s) {unknown}; available: {sorted(available)}")
    return [available[n] for n in names]


def requirements(root: Path, homework: Homework) -> list[str]:
    lines = []
    for path in [AUTOGRADER_DIR / "requirements-grading.txt", homework.folder / "requirements.txt"]:
        if path.is_file():
            lines += [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return lines


def _otter(*args: str, cwd: Path | None = None, timeout: int = 600,
           env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otter", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def run_assign(root: Path, homework: Homework, build: Path) -> Path:
    """Run ``otter assign``; return its output folder (``student/`` and ``autograder/``)."""
    src = build / "master"
    src.mkdir(parents=True)
    shutil.copy(homework.master, src / homework.master.name)
    (src / "requirements.txt").write_text("\n".join(requirements(root, homework)) + "\n")
    out = build / "assign"
    proc = _otter("assign", "--no-pdfs", "--no-run-tests", str(src / homework.master.name), str(out))
    if proc.returncode != 0:
        raise ReleaseError(f"otter assign failed for {homework.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return out


def question_points(tests_dir: Path) -> dict[str, float]:
    from otter.test_files.exception_test import ExceptionTestFile

    return {p.stem: ExceptionTestFile.from_file(str(p)).possible for p in sorted(tests_dir.glob("*.py"))}


def check_points(homework: Homework, cases: list, tests_dir: Path) -> dict[str, float]:
    """The package questions and their points; raise if notebook and cases disagree."""
    spec: dict[str, float] = {}
    for case in cases:
        spec[case.question] = spec.get(case.question, 0) + case.points
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ReleaseError(f"{homework.name}: hidden case names repeat")
    notebook = question_points(tests_dir)
    problems = [
        f"{q}: notebook says {notebook.get(q)} points, hidden cases add up to {p}"
        for q, p in spec.items() if notebook.get(q) != p
    ]
    if problems:
        raise ReleaseError(f"{homework.name}: points disagree:\n  " + "\n  ".join(problems))
    return spec


def _solution_lines(solutions: Path) -> dict[str, set[str]]:
    """Distinctive lines of code inside solution regions (for the leak scan), by module (``attention``)."""
    found: dict[str, set[str]] = {}
    for path in solutions.rglob("*.py"):
        lines = found.setdefault(path.relative_to(solutions).with_suffix("").as_posix(), set())
        inside = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if stubgen.BEGIN.match(line):
                inside = True
            elif stubgen.END.match(line):
                inside = False
            elif inside and len(line.strip()) >= 25:
                lines.add(line.strip())
    return found


def _master_solution_lines(master: Path) -> set[str]:
    """Lines of the master notebook's solution blocks (answers, rubrics)."""
    lines: set[str] = set()
    inside = False
    for cell in json.loads(master.read_text(encoding="utf-8")).get("cells", []):
        body = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "raw" and body.strip().startswith("# BEGIN SOLUTION"):
            inside = True
            continue
        if cell.get("cell_type") == "raw" and body.strip().startswith("# END SOLUTION"):
            inside = False
            continue
        for line in body.splitlines():
            answer = line.split("# SOLUTION")[0].strip() if "# SOLUTION" in line else None
            if inside and len(line.strip()) >= 8 and not line.strip().startswith(("#", "**SOLUTION")):
                lines.add(line.strip())
            elif answer and len(answer) >= 8:
                lines.add(answer)
    return lines


def scan_student_release(folder: Path, solutions: Path, case_names: list[str], master: Path,
                         given: Iterable[str] = ()) -> list[str]:
    """Everything in a student release that must not be there (empty: clean).

    Python files must hold no line of a solution region and no helper that
    only solution code uses; notebooks no line of the master notebook's
    solution blocks, no hidden test and no solution marker; nothing may name a
    hidden case or ship the reference or the cases. The solutions of the
    ``given`` modules (an earlier homework's, which the release hands out) are
    allowed: their regions' lines anywhere, their helpers in their own files.
    """
    problems = []
    given = set(given)
    regions = _solution_lines(solutions)
    package_lines = set().union(*regions.values()) - set().union(*(regions.get(m, set()) for m in given))
    notebook_lines = _master_solution_lines(master)
    helpers = {path.stem: stubgen.solution_only_helpers(path.read_text(encoding="utf-8"))
               for path in solutions.glob("*.py") if path.stem not in given}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        if path.name in ("hidden_cases.py", "manifest.json") or {"reference", "genai_hw_grading"} & set(path.parts):
            problems.append(f"{rel}: grading file in the student release")
        if path.suffix not in (".py", ".ipynb", ".txt", ".md", ".json"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"BEGIN SOLUTION|END SOLUTION|# SOLUTION", text):
            problems.append(f"{rel}: solution marker")
        if path.suffix == ".py":
            code = {line.strip() for line in text.splitlines()}
            leaked = sorted(package_lines & code)
            if leaked:
                problems.append(f"{rel}: solution code ({leaked[0][:60]!r})")
            shipped = sorted(name for name in helpers.get(path.stem, set())
                             if re.search(rf"(?m)^def {re.escape(name)}\(", text))
            if shipped:
                problems.append(f"{rel}: {shipped[0]}() is used only by solution code; put it in a "
                                "module-level solution region so the stub leaves it out")
        if path.suffix == ".ipynb":
            nb = json.loads(text)
            cell_lines = {line.strip() for cell in nb.get("cells", [])
                          for line in "".join(cell.get("source", "")).splitlines()}
            leaked = sorted(notebook_lines & cell_lines)
            if leaked:
                problems.append(f"{rel}: solution from the master notebook ({leaked[0][:60]!r})")
            for cell in nb.get("cells", []):
                body = "".join(cell.get("source", ""))
                if re.search(r"hidden:\s*true", body):
                    problems.append(f"{rel}: hidden test cell")
            if re.search(r'"hidden":\s*true|hidden=True', json.dumps(nb.get("metadata", {}))):
                problems.append(f"{rel}: hidden test in the notebook's metadata")
        hits = [name for name in case_names if name in text]
        if hits:
            problems.append(f"{rel}: names hidden case {hits[0]}")
    return problems


def _zip_folder(folder: Path, zip_path: Path, arc_prefix: str = "") -> None:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, arc_prefix + path.relative_to(folder).as_posix())


def build_student(root: Path, homework: Homework, assign_out: Path, dest: Path, contents: Contents) -> Path:
    folder = dest / homework.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy(assign_out / "student" / homework.master.name, folder / homework.master.name)
    copy_package(root / PACKAGE, folder / PACKAGE, contents)
    reqs = ["otter-grader==7.0.0", *requirements(root, homework)]
    (folder / "requirements.txt").write_text("\n".join(reqs) + "\n")
    _zip_folder(folder, dest / f"{homework.name}.zip", f"{homework.name}/")
    return folder


def _otter_zip(homework: Homework, assign_out: Path) -> Path:
    otter_zips = sorted((assign_out / "autograder").glob("*-autograder_*.zip"))
    if not otter_zips:
        raise ReleaseError(f"otter assign made no autograder zip for {homework.name}")
    return otter_zips[-1]


def build_autograder(root: Path, homework: Homework, assign_out: Path, questions: dict[str, float],
                     data_files: list[str], dest: Path, contents: Contents) -> Path:
    """Otter's autograder zip, plus the plugin, the hidden cases, the reference of the homework's modules and of
    its given ones, and the given modules as handed out (``given/``, named in the manifest's ``given``: the
    plugin puts them in the submission's ``genai_hw/`` over the uploaded copies)."""
    dest.mkdir(parents=True, exist_ok=True)
    zip_path = dest / f"{homework.name}-autograder.zip"
    manifest = {"homework": homework.name, "questions": questions, "visibility": contents.visibility}
    if contents.given:
        manifest["given"] = list(contents.given)
    with zipfile.ZipFile(_otter_zip(homework, assign_out)) as src, \
            zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "otter_config.json":
                config = json.loads(data)
                plugins = config.setdefault("plugins", [])
                if PLUGIN not in [p if isinstance(p, str) else p.get("plugin") for p in plugins]:
                    plugins.append(PLUGIN)
                config["show_hidden"] = True
                data = json.dumps(config, indent=2).encode()
            elif item.filename == "run_otter.py":
                data = RUN_OTTER.encode()
            elif item.filename == "setup.sh":
                data = data.rstrip(b"\n") + b"\n" + SETUP_SANDBOX.encode()
            out.writestr(item, data)
        for path in grading_files():
            out.write(path, path.relative_to(AUTOGRADER_DIR.parent).as_posix())
        out.writestr("genai_hw_grading/manifest.json", json.dumps(manifest, indent=2))
        out.write(homework.cases_file, "genai_hw_grading/hidden_cases.py")
        solutions = root / "solutions" / PACKAGE
        for name in data_files:
            # Stored, not deflated: the word vectors' npz shrinks by 8 % and every ``otter run`` unpacks it.
            out.write(solutions / "data" / name, f"genai_hw_grading/data/{name}", compress_type=zipfile.ZIP_STORED)
        # The reference's code only: the data the cases load travels once, in genai_hw_grading/data/.
        for module in contents.shared + contents.modules + list(contents.given):
            out.write(solutions / f"{module}.py", f"genai_hw_grading/reference/{PACKAGE}/{module}.py")
        for module, text in contents.given.items():
            out.writestr(f"genai_hw_grading/given/{module}.py", text)
    os.chmod(zip_path, 0o600)  # it holds the reference and the hidden cases
    return zip_path


def grading_files() -> list[Path]:
    """What the autograder zip carries of this project's code: ``autograder/__init__.py`` and every module of
    the grading package (found on disk, so a new module travels without a list to keep in step)."""
    return [AUTOGRADER_DIR / "__init__.py",
            *sorted(p for p in GRADING_DIR.rglob("*.py") if "__pycache__" not in p.parts)]


def make_submission(notebook: Path, package: Path, zip_path: Path) -> Path:
    """A submission zip as the notebook's export cell makes it: notebook + genai_hw/."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(notebook, notebook.name)
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"{PACKAGE}/{path.relative_to(package).as_posix()}")
    return zip_path


UPLOAD_LIMIT_BYTES = 300 * 2**20
UPLOAD_LIMIT_FILES = 5000


def check_upload(submission: Path) -> str | None:
    """Why a submission cannot be graded, found before Otter unpacks it (None: it can be)."""
    if submission.suffix != ".zip":
        return None
    try:
        with zipfile.ZipFile(submission) as zf:
            entries = zf.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        return (f"Your upload is not a zip file that can be opened ({err}). "
                "Upload the zip the notebook's last cell makes.")
    size = sum(entry.file_size for entry in entries)
    if len(entries) > UPLOAD_LIMIT_FILES or size > UPLOAD_LIMIT_BYTES:
        return (f"Your upload unpacks to {size / 2**20:.0f} MB in {len(entries)} files, over the limit of "
                f"{UPLOAD_LIMIT_BYTES // 2**20} MB and {UPLOAD_LIMIT_FILES} files. Upload the zip the notebook's "
                "last cell makes.")
    return None


def _last_error(log: str) -> tuple[str, str]:
    """The class name and message of the exception at the end of a traceback in ``log``."""
    for line in reversed(log.strip().splitlines()):
        match = re.match(r"^([\w.]+(?:Error|Exception|Interrupt)): ?(.*)$", line.strip())
        if match:
            return match.group(1).rpartition(".")[2], match.group(2)
    return "Error", log.strip().splitlines()[-1] if log.strip() else "otter run wrote no results"


def otter_run(autograder_zip: Path, submission: Path, out_dir: Path, seed: int | None = None,
              timeout: int = 900, unisolated: bool = False) -> dict:
    """Grade one submission with ``otter run``; return its results.json, which always exists afterwards.

    A submission that Otter cannot grade (not a zip, a zip bomb, no notebook,
    a notebook that is not JSON, a grading past ``timeout``) gets a results
    record with every question at 0, the reason, and an ``error`` key. Otter
    and the sandbox run in a private temporary folder that is removed
    afterwards, with a private copy of the autograder zip (whose path student
    code could read in ``/proc``), and any sandbox a killed grading left
    behind is reaped. ``unisolated``: grade even where student code cannot be isolated (the project's own
    reference and stubs, which ``genai-hw release`` grades).
    """
    from ..grading.gradescope import explain, failure_results
    from ..grading.sandbox import reap_abandoned

    out_dir.mkdir(parents=True, exist_ok=True)
    results = out_dir / "results.json"
    results.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="genai-hw-run-") as tmp:
        private = Path(tmp)
        problem = check_upload(submission)
        log = ""
        if problem is None:
            shutil.copyfile(autograder_zip, private / "autograder.zip")
            env = dict(os.environ, TMPDIR=str(private))
            if seed is not None:
                env["GENAI_HW_SEED"] = str(seed)
            if unisolated:
                env["GENAI_HW_UNSAFE_NO_ISOLATION"] = "1"
            proc = subprocess.Popen([sys.executable, "-m", "otter", "run", "--no-logo", "-a",
                                     str(private / "autograder.zip"), "-o", str(out_dir), str(submission)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            try:
                log, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                # SIGKILL, so Otter's folder keeps the plugin's record of what was graded (read below);
                # reap_abandoned() then ends the student processes and removes the sandbox.
                proc.kill()
                log, _ = proc.communicate()
                problem = f"Grading did not finish within {timeout} s. Please tell your instructor."
            (out_dir / "otter_run.log").write_text(log)
        partial = sorted(private.glob("tmp*/autograder/results/results.json"))  # a grading stopped midway
        if not results.is_file() and partial:
            record = json.loads(partial[0].read_text())
            record["error"] = problem or "the grading did not finish"
            results.write_text(json.dumps(record, indent=2))
        if not results.is_file():
            with zipfile.ZipFile(autograder_zip) as zf:
                zf.extractall(private / "source", [n for n in zf.namelist()
                                                   if n.startswith("tests/") or n.endswith("manifest.json")])
            message = problem or explain(*_last_error(log))
            results.write_text(json.dumps(failure_results(private / "source", message), indent=2))
    reap_abandoned()
    return json.loads(results.read_text())


def score_of(results: dict) -> tuple[float, float]:
    tests = [t for t in results.get("tests", []) if "max_score" in t]
    possible = sum(t["max_score"] for t in tests)
    score = results.get("score", sum(t.get("score", 0) for t in tests))
    return float(score), float(possible)


def release(root: Path, names: list[str] | None = None, out: Path | None = None, verify: bool = True,
            log=print) -> list[Path]:
    """Build every requested homework; return the autograder zips. Raises ReleaseError."""
    out = out or root / "dist"
    stale = stubgen.stale_files(root / "solutions" / PACKAGE, root / PACKAGE)
    if stale:
        raise ReleaseError(f"genai_hw/ is out of date with solutions/genai_hw/ ({stale[:5]}); run `genai-hw stubs`")
    zips = []
    for homework in find_homeworks(root, names):
        contents = release_contents(root, homework)
        notice = given_notice(root, homework, contents)
        if notice:
            log(notice)
        with tempfile.TemporaryDirectory(prefix=f"genai_hw_release_{homework.name}_") as tmp:
            build = Path(tmp)
            assign_out = run_assign(root, homework, build)
            otter_zip = _otter_zip(homework, assign_out)
            with zipfile.ZipFile(otter_zip) as zf:
                zf.extractall(build / "otter_zip")
            from ..grading.harness import load_spec

            spec = load_spec(homework.cases_file)
            cases = list(spec.CASES)
            questions = check_points(homework, cases, build / "otter_zip" / "tests")
            student = build_student(root, homework, assign_out, out / "student", contents)
            case_names = [c.name for c in cases]
            problems = scan_student_release(student, root / "solutions" / PACKAGE, case_names, homework.master,
                                            contents.given)
            if problems:
                raise ReleaseError(f"{homework.name}: the student release leaks:\n  " + "\n  ".join(problems))
            ag_zip = build_autograder(root, homework, assign_out, questions, list(getattr(spec, "DATA_FILES", [])),
                                      out / "autograder", contents)
            log(f"{homework.name}: student release {student}, autograder {ag_zip}")
            if verify:
                from ..grading.sandbox import preflight

                # Before grading: a grader that cannot run student code says why, not "0/20". The project's own
                # reference and stubs are graded even where nothing isolates them.
                preflight(allow_none=True)
                solution_nb = assign_out / "autograder" / homework.master.name
                reference = copy_package(root / "solutions" / PACKAGE, build / "reference" / PACKAGE, contents)
                checks = {
                    "reference": make_submission(solution_nb, reference, build / "reference.zip"),
                    "stubs": make_submission(student / homework.master.name, student / PACKAGE, build / "stubs.zip"),
                }
                for label, submission in checks.items():
                    results = otter_run(ag_zip, submission, build / f"run_{label}", unisolated=True)
                    score, possible = score_of(results)
                    want = possible if label == "reference" else 0.0
                    if "error" in results or possible == 0 or abs(score - want) > 1e-9:
                        detail = results.get("error") or "\n".join(
                            [clip(results.get("output", ""), 2000)]
                            + [f"{t.get('name')}: {t.get('score')}/{t.get('max_score')}: "
                               f"{clip(t.get('output', ''), 1000)}"
                               for t in results.get("tests", []) if t.get("score") != (want and t.get("max_score"))])
                        raise ReleaseError(f"{homework.name}: the {label} submission scored {score}/{possible}, "
                                           f"expected {want}/{possible}:\n{detail}")
                    log(f"{homework.name}: {label} submission scores {score:g}/{possible:g} through otter run")
            zips.append(ag_zip)
    return zips
