"""Records of get_load_balance_assignment (reference/load_balance.py, strategies/load_balance.py)."""

from __future__ import annotations

from ...strategies import load_balance as s_lb
from ..checks import UPSTREAM_TESTS, Check, Ctx, FunctionSpec, agrees, call_probe, describe, raises, returns
from ..plain import Outcome, short


def _int_list(value) -> bool:
    return type(value) is list and all(type(v) is int for v in value)


def _valid_partition(ctx: Ctx, kwargs: dict, got: Outcome, _) -> None:
    if got.exc is not None:
        raise ctx.diverge(describe(got), kwargs)
    sizes, gpus = kwargs["sizes"], kwargs["num_gpus"]
    value = got.value
    if not (type(value) is tuple and len(value) == 3 and all(_int_list(v) for v in value)):
        raise ctx.diverge(f"result={short(value)}, but should be a tuple of three lists of ints", kwargs)
    order, counts, loads = value
    problems = []
    if sorted(order) != list(range(len(sizes))):
        problems.append(f"shuffle_indices={order} is not a permutation of range({len(sizes)})")
    elif len(counts) != gpus or sum(counts) != len(sizes) or min(counts, default=0) < 0:
        problems.append(f"gpu_sample_counts={counts} should have {gpus} entries summing to {len(sizes)}")
    elif len(loads) != gpus:
        problems.append(f"grouped_sizes_per_gpu={loads} should have {gpus} entries")
    else:
        start = 0
        for g in range(gpus):
            group = order[start:start + counts[g]]
            if loads[g] != sum(sizes[i] for i in group):
                problems.append(f"grouped_sizes_per_gpu[{g}]={loads[g]}, but its images {group} total "
                                f"{sum(sizes[i] for i in group)}")
                break
            start += counts[g]
        if not problems and sizes and max(loads) - min(loads) > max(sizes):
            problems.append(f"loads {loads} differ by more than the largest image {max(sizes)}")
    if problems:
        raise ctx.diverge(problems[0], kwargs)


LOAD_BALANCE = FunctionSpec("get_load_balance_assignment", "images -> ranks, balanced by size", [
    agrees("property-agrees", "equals the documented largest-first greedy assignment exactly",
           s_lb.load_balance_inputs(),
           examples=({"sizes": [], "num_gpus": 1}, {"sizes": [5], "num_gpus": 4}, {"sizes": [0, 0, 0], "num_gpus": 2},
                     {"sizes": [7, 7, 7, 7], "num_gpus": 3})),
    Check("property-valid-partition", "a permutation, per-rank counts and totals that add up, totals within max(sizes)",
          call_probe, _valid_partition, strategy=s_lb.load_balance_inputs()),
    returns("case-docstring-example", "the docstring's [1000, 100, 200, 50] on 2 ranks",
            {"sizes": [1000, 100, 200, 50], "num_gpus": 2}, ([0, 2, 1, 3], [1, 3], [1000, 350])),
    returns("case-no-images", "no images: every rank gets none",
            {"sizes": [], "num_gpus": 3}, ([], [0, 0, 0], [0, 0, 0])),
    agrees("property-default-num-gpus", "num_gpus left out: the documented default, 2 ranks",
           s_lb.load_balance_inputs().map(lambda ex: {"sizes": ex["sizes"]})),
    *[returns(f"case-upstream-{name}", f"vLLM's own fixed case ({UPSTREAM_TESTS}::"
              f"test_get_load_balance_assignment_cases, {name.replace('-', ' ')})", args, expected)
      for name, args, expected in [
          ("empty-input", {"sizes": [], "num_gpus": 2}, ([], [0, 0], [0, 0])),
          ("fewer-samples-than-gpus", {"sizes": [100, 200], "num_gpus": 4}, ([1, 0], [1, 1, 0, 0], [200, 100, 0, 0])),
          ("single-gpu", {"sizes": [100, 200, 300], "num_gpus": 1}, ([2, 1, 0], [3], [600])),
          ("balanced-assignment", {"sizes": [100, 100, 100, 100], "num_gpus": 2}, ([0, 2, 1, 3], [2, 2], [200, 200])),
          ("unbalanced-default-num-gpus", {"sizes": [1000, 100, 200, 50]}, ([0, 2, 1, 3], [1, 3], [1000, 350])),
      ]],
    raises("error-zero-gpus", "0 ranks: ValueError", {"sizes": [], "num_gpus": 0}, ValueError),
    raises("error-negative-size", "a negative size: ValueError", {"sizes": [5, -1], "num_gpus": 2}, ValueError),
])

RECORDS = [LOAD_BALANCE]
