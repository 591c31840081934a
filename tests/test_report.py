"""The batch report's grading time (issue 22, item 4): per phase that gradings record, and for the whole
``otter run``, the median and the slowest submission, so an instructor sees where time goes on their class."""

from __future__ import annotations

import json
import re

from autograder.build.grade import columns
from autograder.build.report import write_report


def _graded(tmp_path, name: str, whole: float | None, phases: dict | None) -> dict:
    results = {"tests": [{"name": "q1", "score": 1, "max_score": 1}], "score": 1}
    if phases is not None:
        results["extra_data"] = {"genai_hw": {"seconds": phases}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(results))
    return {"submission": name, "score": 1, "possible": 1, "percent": 100.0, "q1": 1,
            "seconds": "" if whole is None else whole, "isolation": "users", "error": "", "results": str(path)}


def _timing_rows(html: str) -> dict[str, list[str]]:
    table = re.search(r'<table class="timing">(.*?)</table>', html).group(1)
    rows = [re.findall(r"<td>(.*?)</td>", row) for row in table.split("</tr>")]
    return {cells[0]: cells[1:] for cells in rows if cells}


def test_the_report_shows_each_phases_median_and_slowest(tmp_path):
    rows = [_graded(tmp_path, "a.zip", 4.0, {"package": 1.0, "notebook": 2.0}),
            _graded(tmp_path, "b.zip", 9.5, {"package": 1.5, "notebook": 7.0}),
            _graded(tmp_path, "c.zip", 5.0, {"package": 3.4}),  # its notebook never ran
            _graded(tmp_path, "d.zip", None, None)]  # an upload that broke before any phase
    timing = _timing_rows(write_report(rows, tmp_path / "report.html").read_text())
    assert timing["the whole grading (otter run)"] == ["3", "5.0", "9.5", "b.zip"]
    assert timing["package questions (the runner and the reference)"] == ["3", "1.5", "3.4", "c.zip"]
    assert timing["the notebook (its kernel, in grading mode)"] == ["2", "4.5", "7.0", "b.zip"]


def test_no_timing_table_without_timings_and_seconds_is_a_column(tmp_path):
    rows = [_graded(tmp_path, "a.zip", None, None)]
    assert 'class="timing"' not in write_report(rows, tmp_path / "report.html").read_text()
    names = columns(rows)
    assert names.index("percent") < names.index("seconds") < names.index("isolation")
