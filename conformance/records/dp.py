"""Records of the data-parallel helpers, run_dp_sharded_vision_model and
run_dp_sharded_mrope_vision_model (reference/dp.py, strategies/dp.py).

Each check comes twice: under the simulated group (check id ``X``) and under a
real gloo group (``X-gloo``); how a call runs under either is
:mod:`conformance.groups`. The judges compute what every rank should return
in the controller.
"""

from __future__ import annotations

import math

import torch

from ...reference import get_load_balance_assignment
from ...strategies import dp as s_dp
from .. import groups
from ..checks import UPSTREAM_TESTS, Check, Ctx, FunctionSpec, compare_outcomes
from ..plain import Outcome


def _check_calls(ctx: Ctx, ranks: list[dict], expected_calls) -> None:
    for o, want in zip(ranks, expected_calls):
        calls = [list(c) if type(c) is tuple else c for c in o["calls"]]
        if calls != [list(w) for w in want]:
            shown = [tuple(c) if type(c) is list else c for c in calls]
            raise ctx.diverge(f"rank {o['rank']} called the model with (rows, grids) {shown}, but should "
                              f"with {want} (each rank runs its own share once; a rank with nothing does not run)")


def _plain_matches(group: str):
    def judge(ctx: Ctx, ex: dict, got: dict, _) -> None:
        model = ex["model"].build()
        with torch.inference_mode():
            want = model(ex["image_input"].clone())
        ranks = groups.rank_results(ctx, ex, group, got)
        for o in ranks:
            compare_outcomes(ctx, Outcome(value=want), o["outcome"], ex, path=f"rank {o['rank']}: result")
        share = -(-ex["image_input"].shape[0] // ex["world_size"])
        _check_calls(ctx, ranks, [[(share, None)]] * ex["world_size"])
    return judge


def _mrope_matches(group: str):
    def judge(ctx: Ctx, ex: dict, got: dict, _) -> None:
        spec = ex["model"]
        model = spec.build()
        grids, pixels, world = ex["grid_thw_list"], ex["pixel_values"], ex["world_size"]
        want, start = [], 0
        with torch.inference_mode():
            for grid in grids:
                n = math.prod(grid)
                grid_arg = torch.tensor([grid]) if ex["rope_type"] == "rope_2d" else [list(grid)]
                out = model(pixels[start:start + n].clone(), grid_arg)
                want.append(torch.cat(out) if isinstance(out, list) else out)
                start += n
        ranks = groups.rank_results(ctx, ex, group, got)
        for o in ranks:
            compare_outcomes(ctx, Outcome(value=tuple(want)), o["outcome"], ex, path=f"rank {o['rank']}: result")
        patches = [math.prod(g) for g in grids]
        order, counts, _ = get_load_balance_assignment(patches, world)
        expected, first = [], 0
        for r in range(world):
            mine = order[first:first + counts[r]]
            first += counts[r]
            expected.append([(sum(patches[i] for i in mine), [list(grids[i]) for i in mine])] if mine else [])
        _check_calls(ctx, ranks, expected)
    return judge


def _dp_checks(check_id, doc, judge_for_group, strategy_for_ranks, examples=()):
    """The same check under the simulated group and under a real gloo group."""
    return [
        Check(check_id, doc + " (simulated group of 1-6 ranks)", groups.probe("sim"), judge_for_group("sim"),
              strategy=strategy_for_ranks(s_dp.MAX_RANKS), examples=examples, group="sim", prepare=groups.sim_supported),
        Check(check_id + "-gloo", doc + f" (real gloo group of 1-{groups.REAL_MAX_RANKS} processes)", groups.probe("gloo"),
              judge_for_group("gloo"), strategy=strategy_for_ranks(groups.REAL_MAX_RANKS),
              examples=tuple(e for e in examples if e["world_size"] <= groups.REAL_MAX_RANKS), group="gloo"),
    ]


def _dp_cases(check_id, doc, judge_for_group, example):
    """A fixed case under the simulated group and under a real gloo group."""
    return [
        Check(check_id, doc + " (simulated group)", groups.probe("sim"), judge_for_group("sim"), example=example,
              group="sim", prepare=groups.sim_supported),
        Check(check_id + "-gloo", doc + " (real gloo group)", groups.probe("gloo"), judge_for_group("gloo"),
              example=example, group="gloo"),
    ]


def _plain_example(batch, world, row=(3, 8, 8)):
    spec = s_dp.ModelSpec("rows", math.prod(row), 32, seed=batch)
    return {"image_input": torch.arange(batch * math.prod(row), dtype=torch.float32).reshape(batch, *row) % 5,
            "model": spec, "world_size": world}


def _mrope_example(grids, world, merge=1, rope="rope_3d"):
    spec = s_dp.ModelSpec(rope, 2, 3, (merge, merge), torch.float32, 1)
    patches = sum(math.prod(g) for g in grids)
    return {"pixel_values": torch.arange(patches * 2, dtype=torch.float32).reshape(patches, 2) % 7,
            "grid_thw_list": grids, "model": spec, "rope_type": rope, "world_size": world}


DP_PLAIN = FunctionSpec("run_dp_sharded_vision_model", "a model run split across ranks on dim 0", [
    *_dp_checks("property-matches-unsharded",
                "every rank returns exactly model(image_input); each rank runs one ceil(N/W)-row share",
                _plain_matches, lambda ranks: s_dp.plain_dp_problems(max_ranks=ranks)),
    # vLLM's own cases (tests/models/test_vision.py::test_run_dp_sharded_vision_model: batch 1, 4
    # and 5 on 2 ranks), with 3x8x8 images instead of 3x224x224 to stay fast.
    *[case for batch in (1, 4, 5) for case in _dp_cases(
        f"case-upstream-batch-{batch}", f"vLLM's own case ({UPSTREAM_TESTS}::test_run_dp_sharded_vision_model): "
        f"{batch} image(s) on 2 ranks", _plain_matches, lambda batch=batch: _plain_example(batch, 2))],
])

DP_MROPE = FunctionSpec("run_dp_sharded_mrope_vision_model", "an M-RoPE model run balanced across ranks", [
    *_dp_checks("property-matches-per-image-rope3d",
                "every rank returns, per image in order, the model's output for it alone; "
                "each rank runs exactly its balanced share of images",
                _mrope_matches, lambda ranks: s_dp.mrope_problems("rope_3d", max_ranks=ranks),
                examples=(_mrope_example([[1, 10, 100], [1, 10, 10], [1, 10, 20], [1, 5, 10]], 2),
                          _mrope_example([], 3), _mrope_example([[1, 2, 2]], 4, merge=2),
                          # every image smaller than the merge window (0 tokens), more ranks than images:
                          # every rank's share is 0 rows, and an empty rank must hand the gather 0 rows too
                          _mrope_example([[1, 1, 1]], 2, merge=2), _mrope_example([[1, 1, 3], [2, 1, 1]], 3, merge=2))),
    *_dp_checks("property-matches-per-image-rope2d", "the same for rope_2d models ([h, w] grids, [tokens, r, hidden])",
                _mrope_matches, lambda ranks: s_dp.mrope_problems("rope_2d", max_ranks=ranks),
                examples=(_mrope_example([[1, 1]], 2, merge=2, rope="rope_2d"),
                          _mrope_example([[1, 3], [1, 1]], 3, merge=2, rope="rope_2d"))),
    *_dp_checks("property-model-dtype-differs", "the same when the pixels' dtype differs from the model's (rope_3d)",
                _mrope_matches, lambda ranks: s_dp.mrope_problems("rope_3d", max_ranks=ranks, mixed_dtypes=True)),
    *_dp_checks("property-output-dtype-differs", "the same when the model's output dtype is not its parameters' (rope_3d)",
                _mrope_matches, lambda ranks: s_dp.mrope_problems("rope_3d", max_ranks=ranks, output_dtype_differs=True)),
    *_dp_checks("property-parameterless-model", "the same for a model without parameters (rope_3d)",
                _mrope_matches, lambda ranks: s_dp.mrope_problems("rope_3d", parameterless=True, max_ranks=ranks)),
    # vLLM's own cases (tests/models/test_vision.py): test_run_dp_sharded_mrope_vision_model with
    # batch 1, 3 and 5 ([1, 4 + i, 4 + i] grids, merge 2: patch counts 25 and 49 are not multiples
    # of 4), the empty-input and uneven-load tests, and the function's docstring example.
    *[case for batch in (1, 3, 5) for case in _dp_cases(
        f"case-upstream-batch-{batch}", f"vLLM's own case ({UPSTREAM_TESTS}::"
        f"test_run_dp_sharded_mrope_vision_model): {batch} image(s), merge 2, on 2 ranks", _mrope_matches,
        lambda batch=batch: _mrope_example([[1, 4 + i, 4 + i] for i in range(batch)], 2, merge=2))],
    *_dp_cases("case-upstream-empty-input", f"vLLM's own case ({UPSTREAM_TESTS}::"
               "test_run_dp_sharded_mrope_vision_model_empty_input): no images on 2 ranks", _mrope_matches,
               lambda: _mrope_example([], 2, merge=2)),
    *_dp_cases("case-upstream-uneven-load", f"vLLM's own case ({UPSTREAM_TESTS}::"
               "test_run_dp_sharded_mrope_vision_model_uneven_load): 4, 64 and 9 patches, merge 2, on 4 ranks",
               _mrope_matches, lambda: _mrope_example([[1, 2, 2], [1, 8, 8], [1, 3, 3]], 4, merge=2)),
    *_dp_cases("case-docstring-example", "the function's docstring example: grids [1, 10, 100], [1, 10, 10], "
               "[1, 10, 20], [1, 50], merge 2, on 2 ranks", _mrope_matches,
               lambda: _mrope_example([[1, 10, 100], [1, 10, 10], [1, 10, 20], [1, 50]], 2, merge=2)),
])

RECORDS = [DP_PLAIN, DP_MROPE]
