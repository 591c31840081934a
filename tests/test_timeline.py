"""The grading's timeline (autograder/grading/timeline.py): steps in order, and only cells this grading ran."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import nbformat

from autograder.grading import timeline


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def test_steps_are_offsets_from_the_first_mark_and_a_new_grading_starts_afresh():
    timeline.reset()
    timeline.mark("old")
    timeline.reset()
    timeline.mark("otter")
    time.sleep(0.05)
    timeline.mark("sandbox")
    record = timeline.record()
    assert [step for step, _ in record["steps"]] == ["otter", "sandbox"] and record["cells"] == []
    assert record["steps"][0][1] == 0 and 0.04 < record["steps"][1][1] < 1
    assert abs(record["at"] - time.time()) < 5
    timeline.reset()
    assert timeline.record() == {"at": None, "steps": [], "cells": []}


def test_only_cells_that_ran_in_this_grading_are_kept_and_odd_metadata_costs_nothing():
    """An uploaded notebook may carry timing metadata of its own (or metadata of any shape) in cells that did
    not run: such cells are left out, and reading them never raises."""
    timeline.reset()
    timeline.mark("otter")
    now = time.time()
    cells = [nbformat.v4.new_code_cell("a = 1\nprint(a)"), nbformat.v4.new_code_cell("fake"),
             nbformat.v4.new_code_cell("odd"), nbformat.v4.new_markdown_cell("text"),
             nbformat.v4.new_code_cell("fast")]
    nb = nbformat.v4.new_notebook(cells=cells)
    time.sleep(0.3)
    cells[0].metadata["execution"] = {"iopub.execute_input": _iso(now + 0.05), "shell.execute_reply": _iso(now + 0.25)}
    cells[1].metadata["execution"] = {"iopub.execute_input": "1970-01-01T00:00:00Z",
                                      "shell.execute_reply": _iso(now + 0.1)}
    cells[2].metadata = {"execution": 5}
    cells[3]["metadata"] = []
    cells[4].metadata["execution"] = {"iopub.execute_input": _iso(now + 0.26), "shell.execute_reply": _iso(now + 0.27)}
    timeline.cells(nb)
    record = timeline.record()
    assert [cell[1:] for cell in record["cells"]] == [[0, "a = 1"], [4, "fast"]]
    assert abs(record["cells"][0][0] - 0.2) < 0.01
    steps = dict(record["steps"])
    assert list(steps) == ["otter", "cells.first", "cells.last"]
    assert abs(steps["cells.first"] - 0.05) < 0.01 and abs(steps["cells.last"] - 0.27) < 0.01
    timeline.reset()
