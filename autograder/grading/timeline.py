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


def cells(nb) -> None:
    """Keep the slowest cells of an executed notebook (nbclient's ``record_timing`` metadata): seconds from
    the kernel taking the cell to its reply, the cell's index in the notebook as graded (Otter's own cells
    included) and its first line."""
    from datetime import datetime

    def instant(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    # Only times inside this grading: a cell that did not run may carry whatever the uploaded file says.
    since, until = (_MARKS[0][1] if _MARKS else 0.0), time.time()
    timed, first, last = [], None, None
    for index, cell in enumerate(getattr(nb, "cells", [])):
        try:  # the uploaded notebook's metadata may hold anything: a cell that cannot be read is left out
            timing = cell["metadata"]["execution"]
            start, end = instant(timing["iopub.execute_input"]), instant(timing["shell.execute_reply"])
            line = (str(cell.get("source", "")).splitlines() or [""])[0][:80]
        except Exception:  # noqa: BLE001 - timing is for instructors; it never costs a grading
            continue
        if not since <= start <= end <= until:
            continue
        first, last = start if first is None else min(first, start), end if last is None else max(last, end)
        timed.append((round(end - start, 3), index, line))
    _CELLS[:] = sorted(timed, reverse=True)[:SLOWEST_CELLS]
    if first is not None:  # the first cell's start and the last cell's reply, as marks in their place
        _MARKS.extend([("cells.first", first), ("cells.last", last)])
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
