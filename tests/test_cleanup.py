"""Removing what a student made never raises, never recurses without bound and never follows a link
(issue 18); an upload's links and special files are dropped before anything reads it."""

from __future__ import annotations

import os
from pathlib import Path

from autograder.grading import sandbox


def _deep(root: Path, levels: int) -> None:
    """``levels`` nested folders under ``root`` (deeper than PATH_MAX allows as one path), made by descriptor."""
    fd = os.open(root, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)


def test_remove_tree_takes_any_tree_and_follows_no_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    tree = tmp_path / "tree"
    tree.mkdir()
    _deep(tree, 3000)
    (tree / "many").mkdir()
    for i in range(2000):
        (tree / "many" / str(i)).touch()
    (tree / "many").chmod(0)
    (tree / "locked").mkdir()
    (tree / "locked" / "inner").mkdir()
    (tree / "locked").chmod(0o100)
    (tree / "link").symlink_to(outside)
    os.mkfifo(tree / "fifo")
    assert sandbox.remove_tree(tree) is True
    assert not tree.exists()
    assert (outside / "keep.txt").read_text() == "keep"
    assert sandbox.remove_tree(tmp_path / "missing") is True
    (tmp_path / "file").touch()
    assert sandbox.remove_tree(tmp_path / "file") is True and not (tmp_path / "file").exists()


def test_an_uploads_links_and_special_files_are_dropped_before_it_is_read(tmp_path):
    upload = tmp_path / "submission"
    (upload / "genai_hw").mkdir(parents=True)
    (upload / "genai_hw" / "ngrams.py").write_text("x = 1\n")
    (upload / "hw.ipynb").symlink_to("/etc/passwd")
    (upload / "genai_hw" / "data").symlink_to(tmp_path)
    os.mkfifo(upload / "pipe")
    notes = sandbox.drop_special_files(upload)
    assert sorted(p.name for p in upload.rglob("*")) == ["genai_hw", "ngrams.py"]
    assert len(notes) == 3 and all("removed" in note for note in notes)


def test_the_kernels_tests_keep_no_hidden_case(tmp_path):
    """The notebook's kernel gets the tests without their hidden cases; the names they check are reported."""
    from autograder.grading.plugin import hide_hidden_cases

    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "q9.py").write_text(
        'from otter.test_files import test_case\n\nOK_FORMAT = False\n\nname = "q9"\npoints = 1\n\n'
        "@test_case(points=0, hidden=False)\ndef test_valid(best_n):\n    assert 1 <= best_n <= 6\n\n"
        "@test_case(points=1, hidden=True)\ndef test_best(best_n, env):\n    assert best_n == 5\n")
    assert hide_hidden_cases(tests) == ["best_n"]
    text = (tests / "q9.py").read_text()
    assert "test_valid" in text and "best_n == 5" not in text and "test_best" not in text


def test_a_grader_without_seccomp_stops_and_says_why(monkeypatch):
    """Where the filter cannot be installed (libseccomp missing, here made so), no sandbox is made: the
    grader stops before grading, naming the cause and the fix."""
    import pytest

    if not sandbox.isolating():
        pytest.skip("the filter is installed by the root grader's launcher")
    broken = sandbox.DROP.replace('"libseccomp.so.2"', '"libseccomp-missing.so.9"')
    monkeypatch.setattr(sandbox, "DROP", broken.replace('find_library("seccomp")', 'find_library("nothing-here")'))
    with pytest.raises(sandbox.SandboxError, match="cannot be confined here.*libseccomp"):
        sandbox.preflight()
