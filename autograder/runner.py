"""Runs package functions in their own process: the student's, and the reference's.

The same runner computes both sides of a case: the harness starts it on the
submitted package as the sandbox's package user (header ``role``
``"student"``), and on a private copy of the reference as the grader's own
user (``"reference"``: no gensim shortcuts forbidden, word vectors as plain
arrays, on the CPU), so expected and submitted outcomes are made and encoded
alike. What follows describes the student's side.

Started by :mod:`autograder.harness` as ``python -I genai_hw_runner.py
PACKAGE_ROOT``, as the sandbox's unprivileged package user
(:mod:`autograder.sandbox`), where PACKAGE_ROOT is a read-only folder that
holds only this file, ``genai_hw_wire.py``, a snapshot of the submitted
``genai_hw/`` taken before any student code ran, and the data the cases
load. It never sees the reference solutions or the hidden cases' code.

Protocol: the harness writes one JSON line to stdin (the cases, the resources
to preload, and a fresh HMAC key) and closes it. The runner moves its stdout
pipe to a private descriptor and points fd 1 and 2 at /dev/null (whatever
submitted code prints is discarded), imports every module of the package,
and writes ``ready``; then, for each case, it writes a
``start`` line, a ``call`` line before each call, and a ``done`` line. Every
line carries an HMAC of its JSON, so lines that another process writes into
the pipe (the notebook's kernel, a child left behind) are ignored; the key
never touches the disk. Before importing the package it loads the
homework's libraries (header ``stack``) and resources (gensim, the word
vectors), reports its memory then (``baseline``: what the memory limit does
not count) and caps its data size. Submitted code in *this* process can find the key
(in this process's memory): that gains nothing, since all it could sign is
outputs of its own functions, which is what it returns anyway, and the
expected outputs never leave the grader's process.
"""

import hashlib
import hmac
import importlib
import json
import os
import pkgutil
import signal
import sys
import time
import traceback


class CallTimeout(BaseException):
    """Raised inside a submitted function that ran past its time limit."""


def _on_alarm(signum, frame):
    raise CallTimeout()


def _exception_info(err):
    names = [cls.__name__ for cls in type(err).__mro__]
    message = str(err)
    if len(message) > 300:
        message = message[:297] + "..."
    tb = traceback.extract_tb(err.__traceback__)
    student_frames = [f for f in tb if "genai_hw" in f.filename]
    where = ""
    if student_frames:
        last = student_frames[-1]
        where = f"{last.filename.split('genai_hw')[-1].lstrip('/')}, line {last.lineno}"
    return {"status": "raised", "types": names, "message": message, "where": where}


def seed_globals(seed=0):
    """Seed the global random generators before each call, so code that (against the
    instructions) uses them still behaves the same at every grading run."""
    import random

    import numpy

    random.seed(seed)
    numpy.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def _free_gpu_memory():
    """After every call: what a call left in PyTorch's CUDA cache (a CUDA out-of-memory error included)
    must not cost the next case."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        import gc

        gc.collect()
        torch.cuda.empty_cache()


def _run_call(function, wire, call, timeout, check_mutation):
    try:
        args = wire.decode(call["args"])
        kwargs = wire.decode(call["kwargs"])
        before = None
        if check_mutation:
            before = [None if wire.is_resource(a) else wire.dumps(a) for a in args]
        real_args = wire.realize_args(args)
        real_kwargs = wire.realize(kwargs)
    except Exception as err:  # the grader's side of the call failed, not the submitted code
        return {"status": "setup_error", "message": f"{type(err).__name__}: {err}"[:300]}
    seed_globals()
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        value = function(*real_args, **real_kwargs)
    except CallTimeout:
        return {"status": "timeout"}
    except BaseException as err:  # noqa: BLE001 - any failure of submitted code costs the call only
        signal.setitimer(signal.ITIMER_REAL, 0)
        return _exception_info(err)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _free_gpu_memory()
    seconds = time.perf_counter() - start
    mutated = []
    if check_mutation:
        for i, (old, arg) in enumerate(zip(before, real_args)):
            try:
                changed = old is not None and wire.dumps(arg) != old
            except Exception:  # noqa: BLE001 - changed into something that cannot even be written
                changed = True
            if changed:
                mutated.append(i)
    try:
        encoded = wire.encode(value)
        if len(json.dumps(encoded, separators=(",", ":"))) > 20_000_000:
            encoded = {"t": "unsupported", "type": "output over 20 MB", "repr": ""}
    except Exception as err:  # noqa: BLE001 - e.g. an int too long to write, a recursive container
        encoded = {"t": "unsupported", "type": type(value).__name__,
                   "repr": f"could not be sent back ({type(err).__name__})"}
    outcome = {"status": "ok", "value": encoded, "mutated": mutated, "seconds": seconds}
    try:
        state = wire.observe(args, real_args)
        if state is not None:
            outcome["state"] = wire.encode(state)
    except Exception as err:  # noqa: BLE001 - e.g. the models were replaced by something else
        outcome["state"] = {"t": "unsupported", "type": type(err).__name__, "repr": "could not be read"}
    return outcome


def _deterministic_cuda(wire):
    """On a GPU grader (``GENAI_HW_DEVICE=auto``, set only where the grader sees a GPU): no TF32 and
    deterministic kernels, so the student's float32 results differ from the CPU reference only by float32
    rounding (cases.GPU_FLOAT32_RTOL), the same at every grading."""
    if os.environ.get("GENAI_HW_DEVICE") not in ("auto", "cuda"):
        return
    try:
        if wire.tensor_device() != "cuda":
            return
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception:  # noqa: BLE001 - without torch there is nothing to set
        pass


def _settle(emit, data_mib):
    """Report this process's memory now (its baseline: Python and the homework's libraries, no submitted
    code yet), then cap its data size at that plus ``data_mib`` (RLIMIT_DATA, hard too: no way back up)."""
    status = {}
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.split()[0] if value.split() else "0"
    kib = int(status.get("RssAnon", status.get("VmRSS", "0"))) + int(status.get("RssShmem", "0"))
    emit({"event": "baseline", "kib": kib})
    if data_mib:
        import resource

        limit = int(status.get("VmData", "0")) * 1024 + int(data_mib) * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _emitter(key):
    fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    out = os.fdopen(fd, "w", encoding="utf-8", buffering=1)

    def emit(record):
        text = json.dumps(record, separators=(",", ":"))
        mac = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        out.write(f"{text}\t{mac}\n")

    return emit


def main():
    package_root = sys.argv[1]
    job = json.loads(sys.stdin.readline())
    emit = _emitter(bytes.fromhex(job.pop("key")))
    sys.path.insert(0, package_root)
    # Only the snapshot provides genai_hw: no installed copy (an editable install's finder would
    # hand a module the upload lacks from the course checkout).
    sys.meta_path[:] = [f for f in sys.meta_path if getattr(f, "__module__", "").startswith("_frozen_importlib")]
    import genai_hw_wire as wire

    wire.REAL_TENSORS = True
    wire.STUDENT_SIDE = job.get("role", "student") == "student"
    signal.signal(signal.SIGALRM, _on_alarm)
    _deterministic_cuda(wire)
    # The homework's libraries and resources, loaded before any submitted code runs: what the process
    # holds then is its baseline, which the memory limit does not count (sandbox.MEMORY_MIB).
    for name in job.get("stack", []):
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - a library the grading image lacks: the cases say so
            pass
    if any(case.get("forbid_torch_attention") for case in job["cases"]):
        # Before the package is imported, so that a module that imports torch's softmax or attention
        # by name gets the guarded function.
        wire.forbid_torch_attention()
    if job.get("forbid_gensim"):
        wire.forbid_gensim_answers()
    for resource in job.get("preload", []):
        try:
            wire.realize(wire.decode(resource))
        except Exception:  # noqa: BLE001 - reported by the calls that need it
            pass
    _settle(emit, job.get("data_mib"))
    # Import the whole package now, before any case runs.
    for info in pkgutil.iter_modules([os.path.join(package_root, "genai_hw")]):
        try:
            importlib.import_module(f"genai_hw.{info.name}")
        except BaseException:  # noqa: BLE001 - reported again by the cases that need the module
            pass
    emit({"event": "ready"})
    for case in job["cases"]:
        emit({"event": "start", "case": case["index"]})
        module_name, *attributes = case["function"].split(".")
        record = {"event": "done", "case": case["index"], "calls": []}
        try:
            function = importlib.import_module(f"genai_hw.{module_name}")
            for attribute in attributes:  # "attention.TinyGPT.forward": a method, called with the model first
                function = getattr(function, attribute)
        except BaseException as err:  # noqa: BLE001
            info = _exception_info(err)
            record["import_error"] = f"{info['types'][0]}: {info['message']}"
        else:
            wire.torch_attention_guard(bool(case.get("forbid_torch_attention")))
            for number, one_call in enumerate(case["calls"]):
                emit({"event": "call", "case": case["index"], "call": number})
                outcome = _run_call(function, wire, one_call, case["timeout"], case["check_mutation"])
                record["calls"].append(outcome)
                if outcome["status"] == "timeout":
                    break  # the case has failed; do not spend more time on it
            wire.torch_attention_guard(False)
        emit(record)


if __name__ == "__main__":
    main()
