"""The README and docs/ point at what exists: every link, file, test and module they name (issue 21: a number
on a page names the bench script or test it comes from, so those names must stay true)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves(page):
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        assert dest.exists(), f"{page.name}: {target} does not exist"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{page.name}: no heading for #{anchor} in {dest.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_file_test_and_module_named_exists(page):
    text = page.read_text()
    folders = "bench|scripts|tests|autograder|assignments|solutions"
    for name in set(re.findall(rf"\b((?:{folders})/[\w./-]+\.(?:py|sh|txt|toml))", text)):
        assert (ROOT / name).is_file(), f"{page.name} names {name}, which does not exist"
    for file, test in set(re.findall(r"\b(tests/[\w/]+\.py)::(\w+)", text)):
        source = (ROOT / file).read_text()
        assert re.search(rf"^(async )?def {test}\(", source, re.M), f"{page.name} names {file}::{test}, not a test"
    stale = re.findall(r"(?<![\w/-])autograder\.(?!zip\b|build\b|grading\b)\w+", text)
    assert not stale, f"{page.name} names modules of the old flat layout: {stale}"
    for dotted in set(re.findall(r"(?<![\w/-])autograder\.(?:build|grading)(?:\.\w+)*", text)):
        parts = dotted.split(".")
        # the longest prefix that is a module; what follows must be a name defined in it
        for cut in range(len(parts), 0, -1):
            path = ROOT.joinpath(*parts[:cut])
            module = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
            if module.is_file():
                rest = parts[cut:]
                if rest:
                    assert re.search(rf"^(class |def )?{rest[0]}\b", module.read_text(), re.M), \
                        f"{page.name} names {dotted}: {rest[0]} is not defined in {module.relative_to(ROOT)}"
                break
        else:
            pytest.fail(f"{page.name} names {dotted}, which is no module")
