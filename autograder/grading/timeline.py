"""Where a grading's time goes: wall-clock marks of its steps, in results.json for bench/ and instructors.

The plugin, the harness and the notebook's executor call :func:`mark` as
each step ends (``sandbox``: the sandbox is made; ``student.ready``: the
student's runner has imported the package; ``kernel.ready``: the notebook's
kernel answered; ...). :func:`record` gives them as offsets from the first
mark, with the first mark's Unix time, so that a caller who knows when
``otter run`` started (bench/grading.py) sees Otter's own start and finish
too. A mark costs a list append; marks from threads (the reference's
collector) are fine.
"""

from __future__ import annotations

import time

_MARKS: list[tuple[str, float]] = []
_CELLS: list[tuple[float, int, str]] = []
SLOWEST_CELLS = 8


def reset() -> None:
    """Forget the marks (a new grading in this process)."""
    _MARKS.clear()
    _CELLS.clear()


def cell_times(nb, since: float = 0.0, until: float = float("inf")) -> list[tuple[float, float, int, str]]:
    """Each executed cell of ``nb`` (nbclient's ``record_timing`` metadata) as ``(start, end, index, first
    line)``, Unix times of the kernel taking the cell and of its reply; only cells inside ``since`` ..
    ``until``. The notebook's metadata may hold anything: a cell that cannot be read is left out."""
    from datetime import datetime

    def instant(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    times = []
    for index, cell in enumerate(getattr(nb, "cells", [])):
        try:
            timing = cell["metadata"]["execution"]
            start, end = instant(timing["iopub.execute_input"]), instant(timing["shell.execute_reply"])
            line = (str(cell.get("source", "")).splitlines() or [""])[0][:80]
        except Exception:  # noqa: BLE001 - timing is for instructors; it never costs a grading
            continue
        if since <= start <= end <= until:
            times.append((start, end, index, line))
    return times


def cells(nb) -> None:
    """Keep the slowest cells of the notebook this grading executed: seconds from the kernel taking the cell
    to its reply, the cell's index in the notebook as graded (Otter's own cells included) and its first line;
    mark the first cell's start and the last cell's reply. Only times inside this grading count: a cell that
    did not run may carry whatever the uploaded file says."""
    times = cell_times(nb, _MARKS[0][1] if _MARKS else 0.0, time.time())
    _CELLS[:] = sorted(((round(end - start, 3), index, line) for start, end, index, line in times),
                       reverse=True)[:SLOWEST_CELLS]
    if times:
        _MARKS.extend([("cells.first", min(t[0] for t in times)), ("cells.last", max(t[1] for t in times))])
        _MARKS.sort(key=lambda item: item[1])


def mark(step: str) -> None:
    """``step`` ended now. A step that happens again (a runner restarted) is marked again."""
    _MARKS.append((step, time.time()))


def record() -> dict:
    """``{"at": Unix time of the first mark, "steps": [[step, seconds after it], ...], "cells": [[seconds,
    index, first line], ...]}``: the steps in the marks' order, the slowest cells first."""
    cells = [list(cell) for cell in _CELLS]
    if not _MARKS:
        return {"at": None, "steps": [], "cells": cells}
    first = _MARKS[0][1]
    return {"at": first, "steps": [[step, round(at - first, 3)] for step, at in _MARKS], "cells": cells}
