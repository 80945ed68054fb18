"""Run the bad-input catalogue (``CASES`` in tests/diffusion/test_bad_inputs.py) and classify each
outcome, for the issue note and results/bad_inputs.md:

    clear    raises TypeError/ValueError (ddim_edu's ClassroomError is a ValueError), or KeyError
             for a registry name, with a message that names the argument at fault
    cryptic  raises, but another exception type or a message that does not name the argument
    silent   returns without an error
    crash    the process running it dies
    hang     no answer within the time limit

    python scripts/bad_inputs.py                  # 1 thread, 60 s per case
    python scripts/bad_inputs.py --threads 2 --timeout 30

The cases run one after another in a worker process; one that crashes or hangs is recorded and
the worker restarted at the next case. Target: 0 silent, 0 crash, 0 hang.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "tests" / "diffusion" / "test_bad_inputs.py"
CLEAR_TYPES = (TypeError, ValueError, KeyError)
KINDS = ("clear", "cryptic", "silent", "crash", "hang")


def load_catalogue():
    """The ``CASES`` list of the test module, imported by path (no pytest needed)."""
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("bad_inputs_catalogue", CATALOGUE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.CASES


def classify(case) -> dict:
    """Run one case in this process: its outcome (clear, cryptic or silent) and the message."""
    try:
        case.call()
    except BaseException as e:                                  # noqa: BLE001 - classifying is the point
        msg = f"{type(e).__name__}: {e}".replace("\n", " ")
        named = case.arg in str(e)
        kind = "clear" if isinstance(e, CLEAR_TYPES) and named else "cryptic"
        import re
        as_catalogued = isinstance(e, case.exc) and re.search(case.match, str(e)) is not None
        return {"kind": kind, "message": msg[:300], "as_catalogued": as_catalogued}
    return {"kind": "silent", "message": "(returned without an error)", "as_catalogued": False}


def worker(start: int, threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    cases = load_catalogue()
    for i in range(start, len(cases)):
        print(json.dumps({"i": i, "begin": True}), flush=True)
        out = classify(cases[i])
        print(json.dumps({"i": i, **out}), flush=True)


def run_all(n: int, threads: int, limit: float) -> list[dict]:
    results: list[dict | None] = [None] * n
    start = 0
    while start < n:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "DDIM_EDU_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        p = subprocess.Popen([sys.executable, __file__, "--worker", str(start), "--threads", str(threads)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in p.stdout] + [lines.put(None)], daemon=True).start()
        current, t0 = None, time.monotonic()
        while True:
            try:
                line = lines.get(timeout=limit if current is not None else limit + 120)   # + import time
            except queue.Empty:                                 # the current case hangs
                p.kill()
                p.wait()
                i = current if current is not None else start
                results[i] = {"kind": "hang", "message": f"no answer within {limit:g} s", "as_catalogued": False}
                start = i + 1
                break
            if line is None:                                    # the worker is gone
                p.wait()
                if current is not None:
                    results[current] = {"kind": "crash", "message": f"process died, exit code {p.returncode}: "
                                        + p.stderr.read()[-200:].replace("\n", " "), "as_catalogued": False}
                    start = current + 1
                else:
                    start = n if all(r is not None for r in results) else start + 1
                break
            rec = json.loads(line)
            if rec.get("begin"):
                current, t0 = rec["i"], time.monotonic()
            else:
                rec["seconds"] = round(time.monotonic() - t0, 3)
                results[rec.pop("i")] = rec
                current = None
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads of the worker (default 1)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take before it counts as a hang")
    p.add_argument("--out", default=str(ROOT / "results" / "bad_inputs.md"))
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, args.threads)
        return 0
    cases = load_catalogue()
    t0 = time.perf_counter()
    results = run_all(len(cases), args.threads, args.timeout)
    wall = time.perf_counter() - t0
    counts = {k: sum(r["kind"] == k for r in results) for k in KINDS}
    import torch
    rows = [f"| {c.id} | `{c.arg}` | {r['kind']} | {'yes' if r['as_catalogued'] else 'no'} | "
            f"{r['message'].replace('|', '/')} |" for c, r in zip(cases, results)]
    width = max(len(c.id) for c in cases)
    for c, r in zip(cases, results):
        print(f"{c.id:<{width}}  {r['kind']:<8} {r['message'][:110]}")
    summary = ", ".join(f"{counts[k]} {k}" for k in KINDS)
    print(f"\n{len(cases)} cases: {summary} ({wall:.1f} s)")
    text = "\n".join([
        "# Bad-input catalogue", "",
        f"Every case of `CASES` in tests/diffusion/test_bad_inputs.py, run by `python scripts/bad_inputs.py"
        f"{' --threads ' + str(args.threads) if args.threads != 1 else ''}` on "
        f"{datetime.date.today().isoformat()}: torch {torch.__version__}, Python {platform.python_version()}, "
        f"{args.threads} torch thread(s) (OMP_NUM_THREADS={args.threads}), {args.timeout:g} s per case, "
        f"{wall:.1f} s in all.", "",
        f"**{len(cases)} cases: {summary}.** Target: 0 silent, 0 crash, 0 hang.", "",
        "clear: TypeError/ValueError (or KeyError for a registry name) whose message names the argument; "
        "cryptic: raises, but another type or a message not naming it; silent: returns; crash: the process "
        "dies; hang: over the time limit. \"As catalogued\": the exception type and message the test expects.", "",
        "| case | argument | outcome | as catalogued | message |", "|---|---|---|---|---|", *rows, ""])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"-> {args.out}")
    return 0 if counts["silent"] == counts["crash"] == counts["hang"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
