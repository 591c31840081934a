"""Wall time of the hw01 student notebook run end to end with the reference package
in a real Jupyter kernel (budget: under 3 minutes on 2 cores).

    python bench/notebook.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from autograder.release import release  # noqa: E402

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        release(ROOT, ["hw01_ngrams"], tmp / "dist", verify=False, log=lambda *_: None)
        work = tmp / "work"
        shutil.copytree(tmp / "dist" / "student" / "hw01_ngrams", work)
        shutil.rmtree(work / "genai_hw")
        shutil.copytree(ROOT / "solutions" / "genai_hw", work / "genai_hw")
        nb = nbformat.read(work / "hw01_ngrams.ipynb", as_version=4)
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(work)}}).execute()
        seconds = time.perf_counter() - start
    report("notebook_hw01", {"seconds": seconds, "budget_s": 180.0})
