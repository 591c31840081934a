"""Derive the student package from the reference solutions.

Every region of ``solutions/genai_hw/*.py`` between a line
``# BEGIN SOLUTION hwNN qM`` and a line ``# END SOLUTION`` is replaced by one
``raise NotImplementedError(...)`` at the same indentation, naming the
function, the file to edit and the notebook question; a region at module
level holds only the reference's own helper functions and is left out.
Everything else (the docstrings, argument checks, shared helpers, data
files) is copied as it is.

    def normalize(text):            def normalize(text):
        \"\"\"...\"\"\"                       \"\"\"...\"\"\"
        # BEGIN SOLUTION hw01 q2   ->      raise NotImplementedError(
        return re.sub(...)                     "normalize() is not written yet: ... question q2)")
        # END SOLUTION

Nobody edits ``genai_hw/`` by hand: ``genai-hw stubs`` rewrites it and a test
fails when it differs from what this module makes.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION hw(?P<hw>\d+) (?P<question>q\w+)\s*$")
END = re.compile(r"^[ \t]*# END SOLUTION\s*$")
ANY_MARKER = re.compile(r"#\s*(BEGIN|END) SOLUTION")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


class StubError(ValueError):
    """A solution file whose markers cannot be turned into a stub."""


def _enclosing_functions(source: str) -> list[tuple[int, int, str]]:
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            spans.append((node.lineno, node.end_lineno or node.lineno, node.name))
    return spans


def stub_source(source: str, module: str) -> str:
    """Return ``source`` with each solution region replaced by a NotImplementedError."""
    spans = _enclosing_functions(source)
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    region: tuple[int, re.Match[str]] | None = None
    dropped = False  # a module-level region was just left out: so are the blank lines after it
    for number, line in enumerate(lines, start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if dropped and not line.strip():
            continue
        dropped = False
        if region is None:
            if end:
                raise StubError(f"{module}.py line {number}: '# END SOLUTION' without a BEGIN")
            if begin:
                region = (number, begin)
                continue
            if ANY_MARKER.search(line):
                raise StubError(
                    f"{module}.py line {number}: malformed marker, write '# BEGIN SOLUTION hwNN qM' alone on its line"
                )
            out.append(line)
            continue
        if begin:
            raise StubError(f"{module}.py line {number}: nested '# BEGIN SOLUTION'")
        if not end:
            continue
        start, match = region
        # A function's last line is its last statement: the END marker may follow it.
        inside = [(last - first, name) for first, last, name in spans if first < start <= last]
        if not inside:
            # At module level: the reference's own helpers, which the student package does not get.
            body = "".join(lines[start:number - 1])
            try:
                helpers = all(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                              for node in ast.parse(body).body)
            except SyntaxError:
                helpers = False
            if not helpers:
                raise StubError(f"{module}.py line {start}: a solution region must be inside a function, "
                                "or hold only helper functions (at module level, left out of the stubs)")
            region, dropped = None, True
            continue
        function = min(inside)[1]
        homework = int(match["hw"])
        message = (
            f"{function}() is not written yet: implement it in genai_hw/{module}.py "
            f"(homework {homework}, question {match['question']})"
        )
        indent = match["indent"]
        head, tail = message.split(" (homework ")
        out.append(f"{indent}raise NotImplementedError(\n{indent}    {head + ' '!r}\n"
                   f"{indent}    {'(homework ' + tail!r}\n{indent})\n")
        region = None
    if region is not None:
        raise StubError(f"{module}.py line {region[0]}: '# BEGIN SOLUTION' is never closed")
    return "".join(out)


def region_lines(source: str) -> set[int]:
    """Line numbers (1-based) inside solution regions, markers included."""
    inside, lines, start = False, set(), 0
    for number, line in enumerate(source.splitlines(), start=1):
        if BEGIN.match(line):
            inside, start = True, number
        elif END.match(line) and inside:
            lines |= set(range(start, number + 1))
            inside = False
    return lines


def solution_only_helpers(source: str) -> set[str]:
    """Private top-level functions defined outside solution regions but used only inside them: the
    reference's helpers for an exercise, which must sit in a (module-level) region of their own."""
    tree = ast.parse(source)
    regions = region_lines(source)
    defined = {node.name: node for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("_")
               and node.lineno not in regions}
    uses: dict[str, list[int]] = {name: [] for name in defined}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in uses:
            own = defined[node.id]
            if not own.lineno <= node.lineno <= (own.end_lineno or own.lineno):
                uses[node.id].append(node.lineno)
    return {name for name, lines in uses.items() if lines and all(line in regions for line in lines)}


def build_stubs(solutions: Path) -> dict[str, bytes]:
    """Map each relative path of the student package to its content."""
    files: dict[str, bytes] = {}
    for path in sorted(solutions.rglob("*")):
        rel = path.relative_to(solutions)
        if path.is_dir() or any(part == "__pycache__" or part.endswith(".pyc") for part in rel.parts):
            continue
        if path.suffix == ".py":
            module = ".".join(rel.with_suffix("").parts)
            text = stub_source(path.read_text(encoding="utf-8"), module.replace(".", "/"))
            files[rel.as_posix()] = text.encode("utf-8")
        else:
            files[rel.as_posix()] = path.read_bytes()
    return files


def write_stubs(solutions: Path, dest: Path) -> None:
    """Rewrite ``dest`` (the student package) from ``solutions``."""
    files = build_stubs(solutions)
    if dest.exists():
        shutil.rmtree(dest)
    for rel, content in files.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def stale_files(solutions: Path, dest: Path) -> list[str]:
    """Paths where ``dest`` differs from what :func:`build_stubs` makes (empty: in sync)."""
    expected = build_stubs(solutions)
    actual = {
        p.relative_to(dest).as_posix(): p.read_bytes()
        for p in dest.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    } if dest.is_dir() else {}
    names = sorted(set(expected) | set(actual))
    return [name for name in names if expected.get(name) != actual.get(name)]
