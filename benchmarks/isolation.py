"""What isolating the code under test costs: the ``ci`` run against one release
with workers (this tree) against the in-process harness (the commit before
the isolation change, checked out in a git worktree), in one run, pair by pair.

    python benchmarks/isolation.py [--pairs 3] [--base COMMIT] [-- SUITE-ARGS]

Run it with the Python of an env that has vLLM (``.tox/vllm-0.33.0/bin/python``
or ``.tox/tests/bin/python``). Each pair runs the old tree, then this one (the
order alternates between pairs), both as ``python -m vllm_vision_conformance`` (``conformance`` before issue 11) with the
tree first on ``PYTHONPATH``; it prints each wall time, the ratio new/old of
each pair and their median, and checks that both harnesses gave every check
the same status and message. The bar (issue 9): a median ratio of at most
1.25. Exit status 0 within the bar, 1 above it, 2 when the two harnesses
disagree on a verdict.
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

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAR = 1.25


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", HERE, *args], check=True, capture_output=True, text=True).stdout.strip()


def base_commit() -> str:
    """The commit before the one that added the worker module."""
    added = _git("log", "--diff-filter=A", "--format=%H", "--", "conformance/worker.py").splitlines()[-1]
    return _git("rev-parse", f"{added}^")


def run(tree: str, suite_args: list[str], folder: str, tag: str) -> tuple[float, dict]:
    report = os.path.join(folder, f"report-{tag}.json")
    env = dict(os.environ, PYTHONPATH=tree, VLLM_LOGGING_LEVEL="ERROR")
    if os.path.isdir(os.path.join(tree, "vllm_vision_conformance")):  # one top-level package (issue 11)
        cmd = [sys.executable, "-m", "vllm_vision_conformance", "--profile=ci", "--report-json", report, *suite_args]
    else:  # the layout before it
        cmd = [sys.executable, "-m", "conformance", "--hypothesis-profile=ci", "--report-json", report, *suite_args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if not os.path.exists(report):
        sys.exit(f"no report from {tree} (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    with open(report, encoding="utf-8") as handle:
        data = json.load(handle)
    return wall, {(c["target"], c["function"], c["check"]): (c["status"], c["message"]) for c in data["checks"]}


def main() -> int:
    argv = sys.argv[1:]
    suite_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--base", default=None, help="the in-process harness's commit (default: the one before "
                                                      "conformance/worker.py was added)")
    args = parser.parse_args(argv)
    base = args.base or base_commit()
    with tempfile.TemporaryDirectory(prefix="vvc-bench-") as tmp:
        old_tree = os.path.join(tmp, "old")
        _git("worktree", "add", "--detach", old_tree, base)
        try:
            ratios, verdicts = [], {}
            print(f"in-process harness: {base[:10]} (worktree); workers: {HERE}; {args.pairs} pair(s); "
                  f"{os.cpu_count()} cores; {' '.join(suite_args) or 'default targets'}", flush=True)
            for i in range(args.pairs):
                order = [("old", old_tree), ("new", HERE)] if i % 2 == 0 else [("new", HERE), ("old", old_tree)]
                walls = {}
                for tag, tree in order:
                    walls[tag], verdicts[tag] = run(tree, suite_args, tmp, f"{tag}-{i}")
                ratios.append(walls["new"] / walls["old"])
                print(f"pair {i + 1}: in-process {walls['old']:.1f} s, workers {walls['new']:.1f} s, "
                      f"ratio {ratios[-1]:.3f}", flush=True)
        finally:
            _git("worktree", "remove", "--force", old_tree)
    median = statistics.median(ratios)
    print(f"median ratio workers / in-process: {median:.3f} (bar {BAR}); min {min(ratios):.3f}, max {max(ratios):.3f}")
    differ = {k for k in verdicts["old"].keys() | verdicts["new"].keys() if verdicts["old"].get(k) != verdicts["new"].get(k)}
    if differ:
        print(f"the two harnesses disagree on {len(differ)} check(s), e.g. {sorted(differ)[:3]}")
        return 2
    print(f"both harnesses gave all {len(verdicts['new'])} checks the same status and message")
    return 0 if median <= BAR else 1


if __name__ == "__main__":
    raise SystemExit(main())
