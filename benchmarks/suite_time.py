"""How long the default CI profile of the whole suite takes against one release,
and how many examples each function ran.

    python benchmarks/suite_time.py [extra CLI args]

Prints the wall time of one run of ``vllm-vision-conformance`` (reference +
vLLM, ``ci`` profile), then examples per function and target from its JSON
report. The bar (issue 2): at most 180 s on a 2-core machine, install excluded.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import time


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        cmd = [sys.executable, "-m", "vllm_vision_conformance", "--profile=ci", "--report-json", report, *sys.argv[1:]]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - start
        data = json.load(open(report))
    examples = collections.defaultdict(int)
    props = collections.defaultdict(list)
    for check in data["checks"]:
        examples[(check["function"], check["target"])] += check["examples"]
        if check["kind"] == "property" and check["status"] in ("conforms", "expected", "diverges"):
            props[(check["function"], check["target"])].append(check["examples"])
    release = next((t["release"] for t in data["targets"] if t["name"] == "vllm"), None)
    print(f"suite wall time: {wall:.1f} s (exit status {proc.returncode}; vLLM {release}; torch {data['torch']}; "
          f"profile {data['hypothesis_profile']}; {os.cpu_count()} cores)")
    print(f"{'function':36} {'target':10} {'examples':>8}  per property")
    for (function, target), count in sorted(examples.items()):
        print(f"{function:36} {target:10} {count:8d}  {props.get((function, target), [])}")
    return 0 if wall <= 180 else 1


if __name__ == "__main__":
    raise SystemExit(main())
