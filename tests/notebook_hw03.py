"""What homework 3's notebook, run end to end with the reference package, must show (used by test_notebook)."""

from __future__ import annotations

import re


def check_reference_run(nb, printed: str) -> None:
    """``nb``: the executed notebook; ``printed``: every cell's text output, joined."""
    assert "Adam betas (0.5, 0.999): modes covered by seeds 0, 1, 2: [8, 8, 8] of 8" in printed, printed[-3000:]
    assert "saturating gradient" in printed and "after the last" in printed
    collapsed = re.search(r"betas \(0\.9, 0\.999\): modes covered by seeds 0, 1, 2: \[([\d, ]+)\] of 8", printed)
    assert collapsed and min(int(n) for n in collapsed.group(1).split(",")) <= 2, printed[-3000:]  # mode collapse

