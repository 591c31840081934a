"""The start-up file of a graded notebook's kernel (plugin.KERNEL_OUTPUT_CAP), run by a real kernel."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from autograder.grading.plugin import KERNEL_OUTPUT_CAP


def run_with_startup(tmp_path, sources: list[str], limit: int = 10_000) -> nbformat.NotebookNode:
    startup = tmp_path / "startup.py"
    startup.write_text(KERNEL_OUTPUT_CAP.format(limit=limit, stack=["json"], data_mib=4096), encoding="utf-8")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   extra_arguments=[f"--IPKernelApp.exec_files={startup}"],
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_autoreload_does_nothing_and_errors_show_plain_tracebacks(tmp_path):
    nb = run_with_startup(tmp_path, [
        "%load_ext autoreload\n%autoreload 2",
        "import sys\nprint(sys.modules['IPython.extensions.autoreload'].__doc__)",
        "def inner():\n    raise ValueError('boom')\n\ninner()",
        "print(get_ipython().InteractiveTB.mode)",
    ])
    assert [o.output_type for o in nb.cells[0].outputs] == []
    assert "does nothing" in text_of(nb.cells[1])
    error = next(o for o in nb.cells[2].outputs if o.output_type == "error")
    assert (error.ename, error.evalue) == ("ValueError", "boom")
    shown = "\n".join(error.traceback)
    assert "raise ValueError('boom')" in shown and "inner()" in shown  # each frame's code, still
    assert "---->" not in shown  # IPython's default marks the line in context, with an arrow
    assert text_of(nb.cells[3]).strip() == "Plain"


def test_prints_past_the_limit_are_dropped(tmp_path):
    nb = run_with_startup(tmp_path, ["print('x' * 300)", "print('more')"], limit=100)
    assert text_of(nb.cells[0]) == "x" * 100 and text_of(nb.cells[1]) == ""
