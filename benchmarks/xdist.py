"""What pytest-xdist buys: the ``ci`` run against one release, serial against
``-n 2``, in one run, pair by pair (the order alternates between pairs).

    python benchmarks/xdist.py [--pairs 2] [--workers 2] [-- SUITE-ARGS]

Run it with the Python of an env that has vLLM (``.tox/vllm-0.33.0/bin/python``).
It prints each wall time, the ratio parallel/serial of each pair and their
median, and checks that both runs gave every check the same status, message and
input, with the same exit status. Exit status 0 when they agree, 2 when not.
On 2 cores the workers share the cores with the targets' own processes, so
the gain is bounded; the figure in the README is this script's output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run(suite_args: list[str], folder: str, tag: str) -> tuple[float, int, dict]:
    report = os.path.join(folder, f"report-{tag}.json")
    env = dict(os.environ, VLLM_LOGGING_LEVEL="ERROR")
    cmd = [sys.executable, "-m", "vllm_vision_conformance", "--report-json", report, *suite_args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if not os.path.exists(report):
        sys.exit(f"no report (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    with open(report, encoding="utf-8") as handle:
        data = json.load(handle)
    return wall, proc.returncode, {(c["target"], c["function"], c["check"]): (c["status"], c["message"], c["example"])
                                   for c in data["checks"]}


def main() -> int:
    argv = sys.argv[1:]
    suite_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--workers", default="2")
    args = parser.parse_args(argv)
    ratios, seen = [], {}
    print(f"serial against -n {args.workers}; {args.pairs} pair(s); {os.cpu_count()} cores; "
          f"{' '.join(suite_args) or 'default targets'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vvc-bench-") as tmp:
        for i in range(args.pairs):
            order = [("serial", []), ("xdist", ["-n", args.workers])]
            walls = {}
            for tag, extra in order if i % 2 == 0 else order[::-1]:
                walls[tag], status, verdicts = run([*suite_args, *extra], tmp, f"{tag}-{i}")
                seen.setdefault(tag, []).append((status, verdicts))
            ratios.append(walls["xdist"] / walls["serial"])
            print(f"pair {i + 1}: serial {walls['serial']:.1f} s, -n {args.workers} {walls['xdist']:.1f} s, "
                  f"ratio {ratios[-1]:.3f}", flush=True)
    print(f"median ratio -n {args.workers} / serial: {statistics.median(ratios):.3f}; "
          f"min {min(ratios):.3f}, max {max(ratios):.3f}")
    runs = seen["serial"] + seen["xdist"]
    if any(r != runs[0] for r in runs):
        print("the runs disagree on the exit status or on a verdict")
        return 2
    print(f"every run gave exit status {runs[0][0]} and all {len(runs[0][1])} checks the same status, message "
          "and input")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
