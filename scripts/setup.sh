#!/usr/bin/env bash
# Set up a checkout of genai-hw: an environment with everything installed, then `genai-hw release`.
#
#     scripts/setup.sh [--fresh] [--browser] [--no-release]
#
# As a normal user the environment is .venv inside the checkout. As root, the grader runs student code as
# unprivileged users (autograder/grading/sandbox.py), as on Gradescope: they must be able to run the environment's
# Python but must not read the checkout (the reference solutions). So, as root, the environment lives
# outside the checkout (/opt/genai-hw/venvs/<checkout>-<hash>, one per checkout), .venv is a link to it,
# the checkout is made private (chmod 700) and the folders above the base Python are made traversable
# (o+x, never readable). Either way, afterwards: `. .venv/bin/activate`.
#
#   --fresh       remove the environment first (CI)
#   --browser     as root, install Debian's chromium for the HTML report's browser test (apt)
#   --no-release  stop after installing
#
# PYTHON (default python3, 3.11) is the interpreter the environment is made from.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd -P)"
PYTHON="${PYTHON:-python3}"
FRESH=0 BROWSER=0 RELEASE=1
for arg in "$@"; do
    case "$arg" in
        --fresh) FRESH=1 ;;
        --browser) BROWSER=1 ;;
        --no-release) RELEASE=0 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done
say() { echo "setup: $*" >&2; }

if [ "$(id -u)" = 0 ]; then
    VENV="/opt/genai-hw/venvs/$(basename "$ROOT")-$(printf '%s' "$ROOT" | sha256sum | cut -c1-10)"
    chmod 700 "$ROOT"
    # Every folder above the base interpreter must be traversable (pyenv's Python lives under /root).
    base="$("$PYTHON" -c 'import os, sys; print(os.path.realpath(sys.base_prefix))')"
    dir="$base"
    while [ "$dir" != / ]; do
        mode="$(stat -c '%a' "$dir")"
        if (( (${mode: -1} & 1) == 0 )); then
            chmod o+x "$dir" && say "made $dir traversable for the sandbox users (o+x: not readable)"
        fi
        dir="$(dirname "$dir")"
    done
    if [ "$BROWSER" = 1 ] && ! command -v chromium >/dev/null; then
        say "installing chromium (apt)"
        apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
    fi
    if [ -e .venv ] && [ ! -L .venv ]; then
        say ".venv is a folder inside this private checkout, where the sandbox users cannot run it: removing it"
        rm -rf .venv
    fi
    mkdir -p "$(dirname "$VENV")"
    chmod 755 /opt/genai-hw "$(dirname "$VENV")"
else
    VENV="$ROOT/.venv"
fi

[ "$FRESH" = 1 ] && rm -rf "$VENV"
if [ ! -x "$VENV/bin/python" ]; then
    say "creating the environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
[ "$VENV" = "$ROOT/.venv" ] || ln -sfn "$VENV" .venv
# shellcheck disable=SC1091
. "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# PyTorch first: where a CPU build is offered (as on the project's machines), pip takes it; a plain torch
# requirement with nothing installed would pull PyPI's default build with the CUDA libraries.
say "installing torch"
pip install -q torch==2.13.0
# The grading images' pins as constraints, so that the tests run on the versions Gradescope installs.
grep -h '==' autograder/requirements-grading.txt assignments/*/requirements.txt | grep -v '^torch==' | sort -u \
    > "$VENV/pins.txt"
say "installing genai-hw and its development dependencies"
pip install -q -e ".[dev]" -c "$VENV/pins.txt"
if [ "$RELEASE" = 1 ]; then
    genai-hw release
fi
say "done: . .venv/bin/activate"
