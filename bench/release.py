"""Wall time of ``genai-hw release`` for hw01 (budget: under 30 s), verification included.

    python bench/release.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import measure, report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        seconds, peak, rc = measure([sys.executable, "-m", "autograder.cli", "--root", str(ROOT), "release",
                                     "hw01_ngrams", "--out", tmp])
    if rc != 0:
        raise SystemExit("genai-hw release failed")
    report("release_hw01", {"seconds": seconds, "budget_s": 30.0, "peak_mib": peak})
