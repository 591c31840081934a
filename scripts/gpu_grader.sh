#!/usr/bin/env bash
# A GPU grader: a Python environment with CUDA-enabled torch and the grading packages, checked on the GPU.
#
#   scripts/gpu_grader.sh [VENV]        (default VENV: /opt/genai-hw-gpu/venv as root, else .venv-gpu)
#
# Then grade as usual, with that environment active:
#   genai-hw grade --autograder dist/autograder/<hw>-autograder.zip submissions/ --out grades
#   otter run -a dist/autograder/<hw>-autograder.zip submission.zip
# Run it as root (in a container), like any grader that must isolate student code (docs/grading.md): the
# environment then lives outside the checkout, which should be private (chmod 700), and the
# sandbox's users need the GPU's device files (/dev/nvidia*, usually mode 0666).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
    VENV=${1:-/opt/genai-hw-gpu/venv}
    case "$(realpath -m "$VENV")" in "$(pwd)"/*)
        echo "gpu_grader.sh: put the environment outside the checkout (student code must not read it)" >&2
        exit 2 ;;
    esac
else
    VENV=${1:-.venv-gpu}
fi
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# PyPI's Linux x86_64 wheel of torch is the CUDA build (it pulls the nvidia-* runtime packages).
pip install -q "torch==2.13.0"
pip install -q -r autograder/requirements-grading.txt
for extra in assignments/*/requirements.txt; do
    pip install -q -r "$extra"
done
pip install -q -e ".[dev]"

python - <<'PY'
import sys

import torch

if not torch.cuda.is_available():
    sys.exit("gpu_grader.sh: torch sees no CUDA device here (torch %s, CUDA build %s); check the driver "
             "(nvidia-smi) and that this torch is a CUDA build" % (torch.__version__, torch.version.cuda))
name = torch.cuda.get_device_name(0)
total = torch.cuda.get_device_properties(0).total_memory / 2**30
print(f"gpu_grader.sh: torch {torch.__version__}, CUDA {torch.version.cuda}, {name} ({total:.0f} GiB)")
PY
# The GPU's own checks: CUDA out of memory costs one case, the runner's deterministic settings.
python -m pytest -q -m gpu
echo "gpu_grader.sh: ready; activate with: . $VENV/bin/activate"
