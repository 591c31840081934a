"""Two places for two jobs (issue 21): the build (``autograder/build/``, on the instructor's machine) and the
grading (``autograder/grading/``, inside the autograder zip, next to student code). The grading imports
nothing of the build, no two modules import each other, and the zip carries the grading package whole and
nothing of the build."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "autograder"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The ``autograder`` modules that ``path`` imports anywhere (at the top or inside a function)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # ``from . import sandbox``
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def test_the_grading_imports_nothing_of_the_build():
    graph = _graph()
    grading = [m for m in graph if m.startswith("autograder.grading")]
    assert len(grading) >= 9, grading
    wrong = {m: sorted(i for i in graph[m] if i.startswith("autograder.build")) for m in grading}
    assert not any(wrong.values()), wrong


def test_no_two_modules_import_each_other():
    """No cycle at all in the imports between the project's modules (at the top or inside a function)."""
    graph = {m: {i for i in imports if i not in ("autograder", "autograder.build", "autograder.grading")}
             for m, imports in _graph().items()}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for other in sorted(graph.get(module, ())):
            assert state.get(other) != 1, "import cycle: " + " -> ".join([*path, module, other])
            if other not in state:
                visit(other, [*path, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])
    assert graph["autograder.build.release"] >= {"autograder.grading.cases", "autograder.grading.gradescope"}


def test_importing_the_grading_loads_nothing_of_the_build():
    """What the zip runs, imported in a fresh interpreter: no module of the build comes with it."""
    modules = sorted(_module_name(p) for p in (PACKAGE / "grading").glob("*.py"))
    code = ("import importlib, sys\n"
            f"for name in {modules!r}:\n    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.startswith('autograder.build')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_the_autograder_zip_carries_the_grading_package_whole_and_nothing_of_the_build(released):
    with zipfile.ZipFile(released["zip"]) as zf:
        code = sorted(n for n in zf.namelist() if n.startswith("autograder/"))
    on_disk = sorted(["autograder/__init__.py",
                      *(p.relative_to(ROOT).as_posix() for p in (PACKAGE / "grading").rglob("*.py")
                        if "__pycache__" not in p.parts)])
    assert code == on_disk
    assert "autograder/grading/plugin.py" in code and not any(n.startswith("autograder/build/") for n in code)
