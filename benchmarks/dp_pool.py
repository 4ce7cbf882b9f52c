"""Real gloo groups: persistent rank pool vs a fresh group spawned per example.

    python benchmarks/dp_pool.py [--examples 200] [--spawn-runs 2]

Measured in one run (the machine is noisy, so only the ratio is meaningful):
examples/second of ``run_dp_sharded_mrope_vision_model`` through the pool at
world sizes 2 and 4 (start-up excluded, printed apart), and the cost of one
example when every example spawns its own group (each rank a fresh
interpreter that imports vLLM, joins the group and runs one job). The goal
(issue 3): pool >= 300x the spawn-per-example rate, and >= 40 examples/s at
world size 4 on the 2-core machine.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")


def make_jobs(count: int, target: str, seed: int = 0) -> list[dict]:
    from vllm_vision_conformance.strategies.dp import ModelSpec

    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        merge = rng.choice([1, 2])
        grids = [[rng.randint(1, 2), merge * rng.randint(1, 4), merge * rng.randint(1, 4)]
                 for _ in range(rng.randint(0, 6))]
        patches = sum(math.prod(g) for g in grids)
        spec = ModelSpec("rope_3d", 2, 3, (merge, merge), torch.float32, seed=i)
        pixels = (torch.arange(patches * 2) % 7).reshape(patches, 2).float()
        jobs.append({"target": target, "function": "run_dp_sharded_mrope_vision_model", "model": spec,
                     "args": ["<model>", pixels, grids], "kwargs": {"rope_type": "rope_3d"}})
    return jobs


def _spawned_rank(rank, world, port, target_name, job, results):
    """One rank of a group that lives for one example (a fresh interpreter)."""
    from vllm_vision_conformance.conformance import rankpool
    from vllm_vision_conformance.conformance.targets import VLLM_MODULE, load_in_process, load_reference

    target = load_in_process("vllm", "vllm", VLLM_MODULE) if target_name == "vllm" else load_reference()
    rankpool.register_targets([target])
    rankpool._init_group(rank, world, port, "gloo")
    payload = rankpool._execute(rank, world, job)
    results.put((rank, payload["outcome"][0] == "O"))


def spawn_per_example(job: dict, world: int) -> float:
    from vllm_vision_conformance.conformance.rankpool import _free_port

    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    start = time.perf_counter()
    procs = [ctx.Process(target=_spawned_rank, args=(r, world, port, job["target"], job, results)) for r in range(world)]
    for p in procs:
        p.start()
    oks = [results.get(timeout=300) for _ in range(world)]
    for p in procs:
        p.join(60)
    assert all(ok for _, ok in oks), oks
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--spawn-runs", type=int, default=2)
    args = parser.parse_args()

    from vllm_vision_conformance.conformance import rankpool
    from vllm_vision_conformance.conformance.targets import VLLM_MODULE, LoadError, load_in_process, load_reference

    try:
        vllm = load_in_process("vllm", "vllm", VLLM_MODULE)
    except LoadError:
        vllm = None
    target = "vllm" if vllm else "reference"
    rankpool.register_targets([load_reference(), vllm] if vllm else [load_reference()])
    print(f"target: {target}{' ' + vllm.release if vllm else ''}; torch {torch.__version__}; "
          f"{os.cpu_count()} cores; {args.examples} examples per world size")

    rates = {}
    for world in (2, 4):
        pool = rankpool.RankPool(world)
        t0 = time.perf_counter()
        pool.start()
        startup = time.perf_counter() - t0
        jobs = make_jobs(args.examples, target, seed=world)
        t0 = time.perf_counter()
        for job in jobs:
            outcomes = pool.run(job)
            assert not any(o.raised for o in outcomes), [o.error for o in outcomes]
        elapsed = time.perf_counter() - t0
        pool.close()
        rates[world] = args.examples / elapsed
        print(f"pool  W={world}: start-up {startup:.2f} s, {rates[world]:.1f} examples/s")

    for world in (2, 4):
        job = make_jobs(1, target, seed=99)[0]
        times = [spawn_per_example(job, world) for _ in range(args.spawn_runs)]
        per = sum(times) / len(times)
        print(f"spawn W={world}: {per:.2f} s per example (mean of {len(times)}), {1 / per:.3f} examples/s; "
              f"pool is {rates[world] * per:.0f}x faster")
    ok = rates[4] >= 40
    print(f"goal: >= 40 examples/s at W=4: {'met' if ok else 'NOT met'} ({rates[4]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
