"""The registry: one record per documented name, its checks, nothing else.

Adding a documented function costs one reference function, one strategy
module and one record here; the generic tests in ``conformance.suite`` run
every check of every record against every target.

Every check is a *probe* (run where the target lives, see
``conformance.worker``) and a *judge* (run in the controller on the plain data
the probe observed); see ``conformance.checks``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import types
import typing

import torch

from ..strategies import backend as s_backend
from ..strategies import dp as s_dp
from ..strategies import encoder_info as s_info
from ..strategies import encoder_outputs as s_enc
from ..strategies import feature_select as s_fs
from ..strategies import load_balance as s_lb
from ..strategies import pos_ids as s_pos

from . import adapter
from .checks import (FAULT_SHRINKS, Check, Ctx, NotApplicable, Unsupported, agrees, both_returned, call_probe,
                     compare_outcomes, describe, exc_name, raises, returns)
from .plain import Encoded, Outcome, qualified_name, short
from hypothesis import strategies as st


@dataclasses.dataclass
class FunctionSpec:
    name: str
    summary: str
    checks: list[Check]

    def check(self, check_id: str) -> Check:
        return next(c for c in self.checks if c.id == check_id)


# ---- type aliases -----------------------------------------------------------

def _describe_type(t, depth: int = 0):
    """A typing construct as plain data: ["Literal", values], ["Union", members],
    ["Callable", params, result], ["class", name], ["other", type name]."""
    if depth > 8:
        return ["other", "too deep"]
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is typing.Literal:
        return ["Literal", list(args)]
    if origin in (typing.Union, types.UnionType):
        return ["Union", [_describe_type(a, depth + 1) for a in args]]
    if origin is collections.abc.Callable:
        params, result = (args[0], args[1]) if len(args) == 2 else (None, None)
        shown = [_describe_type(p, depth + 1) for p in params] if type(params) is list else "..."
        return ["Callable", shown, _describe_type(result, depth + 1)]
    if isinstance(t, type):
        return ["class", qualified_name(t)]
    return ["other", qualified_name(type(t))]


def _render_type(desc) -> str:
    """The plain description written back as a type expression (our formatting only)."""
    if type(desc) is not list or not desc:
        return short(desc)
    kind = desc[0]
    if kind == "Literal" and len(desc) == 2 and type(desc[1]) is list:
        return f"Literal[{', '.join(short(v) for v in desc[1])}]"
    if kind == "Union" and len(desc) == 2 and type(desc[1]) is list:
        return " | ".join(_render_type(m) for m in desc[1])
    if kind == "Callable" and len(desc) == 3:
        params = desc[1] if type(desc[1]) is not list else "[" + ", ".join(_render_type(p) for p in desc[1]) + "]"
        return f"Callable[{params}, {_render_type(desc[2])}]"
    if kind in ("class", "other") and len(desc) == 2 and type(desc[1]) is str:
        return desc[1].removeprefix("builtins.")
    return short(desc)


NAMED = ["class", "default", "full"]
_TENSOR = ["class", qualified_name(torch.Tensor)]


def _alias_probe(view, _: dict) -> Outcome:
    alias = view.fn(view.function)
    return view.invoke(_describe_type, alias)


def _is_named_literal(desc) -> bool:
    return (type(desc) is list and len(desc) == 2 and desc[0] == "Literal" and type(desc[1]) is list
            and all(type(v) is str for v in desc[1]) and sorted(desc[1]) == sorted(NAMED) and len(desc[1]) == 3)


def _check_str_alias(ctx: Ctx, _: dict, got: Outcome, __) -> None:
    if got.exc is not None:
        raise ctx.diverge(f"examining VisionFeatureSelectStrategyStr {describe(got)}", {})
    if not _is_named_literal(got.value):
        raise ctx.diverge(f"VisionFeatureSelectStrategyStr={_render_type(got.value)}, but should be "
                          "Literal['class', 'default', 'full']", {})


def _check_union_alias(ctx: Ctx, _: dict, got: Outcome, __) -> None:
    if got.exc is not None:
        raise ctx.diverge(f"examining VisionFeatureSelectStrategy {describe(got)}", {})
    desc = got.value
    members = desc[1] if type(desc) is list and len(desc) == 2 and desc[0] == "Union" and type(desc[1]) is list else []
    literal = any(_is_named_literal(m) for m in members)
    tensor_fn = any(m == ["Callable", [_TENSOR], _TENSOR] for m in members)
    if not (literal and tensor_fn and len(members) == 2):
        raise ctx.diverge(
            f"VisionFeatureSelectStrategy={_render_type(desc)}, but should be the union of "
            "Literal['class', 'default', 'full'] and Callable[[Tensor], Tensor]", {})


ALIASES = [
    FunctionSpec("VisionFeatureSelectStrategyStr", "the named strategies", [
        Check("case-literal-values", "a Literal of exactly 'class', 'default', 'full'", _alias_probe,
              _check_str_alias, example={}),
    ]),
    FunctionSpec("VisionFeatureSelectStrategy", "a named strategy or a tensor callable", [
        Check("case-union-members", "the union of the Literal and Callable[[Tensor], Tensor]", _alias_probe,
              _check_union_alias, example={}),
    ]),
]


# ---- feature selection ------------------------------------------------------

@st.composite
def _selector_inputs(draw):
    return {"strategy": draw(s_fs.feature_select_strategies()), "feats": draw(s_fs.vision_features())}


def _selector_probe(view, ex: dict) -> dict:
    """The selector for ``ex["strategy"]``; whether a callable came back unchanged; it applied to the features."""
    sel = view.call(view.function, {"strategy": ex["strategy"]})
    if sel.exc is not None:
        return {"selector": sel}
    out = {"selector": Outcome(value=None), "same": sel.value is ex["strategy"]}
    if "feats" in ex:
        out["applied"] = view.invoke(sel.value, ex["feats"].clone())
    return out


def _selector_agrees(ctx: Ctx, ex: dict, got: dict, want: dict) -> None:
    kwargs = {"strategy": ex["strategy"]}
    if not both_returned(ctx, want["selector"], got["selector"], kwargs, "a selector"):
        return
    if callable(ex["strategy"]) and got.get("same") is not True:
        raise ctx.diverge("a callable strategy must be returned unchanged (the same object)", kwargs)
    compare_outcomes(ctx, want["applied"], got["applied"], ex, path="selector(feats)")


def _identity_strategy(feats):
    return feats[:, ::2, :]


def _callable_unchanged(ctx: Ctx, ex: dict, got: dict, _) -> None:
    sel = got["selector"]
    if sel.exc is not None or got.get("same") is not True:
        what = describe(sel) if sel.exc is not None else "returned another object"
        raise ctx.diverge(f"{what}, but a callable strategy must be returned unchanged (the same object)", ex)


def _class_probe(view, ex: dict) -> dict:
    return _selector_probe(view, dict(ex, feats=torch.arange(2 * 5 * 3).reshape(2, 5, 3)))


def _class_keeps_first(ctx: Ctx, ex: dict, got: dict, _) -> None:
    if got["selector"].exc is not None:
        raise ctx.diverge(describe(got["selector"]), ex)
    compare_outcomes(ctx, Outcome(value=torch.tensor([[[0, 1, 2]], [[15, 16, 17]]])), got["applied"], ex,
                     path="selector(feats)")


FEATURE_SELECTOR = FunctionSpec("_get_vision_feature_selector", "a strategy -> the function applying it", [
    Check("property-agrees", "the selector keeps the same tokens as the reference's, exactly",
          _selector_probe, _selector_agrees, strategy=_selector_inputs(), needs_reference=True,
          ref_probe=_selector_probe),
    Check("case-callable-unchanged", "a callable strategy is returned as the same object",
          _selector_probe, _callable_unchanged, example={"strategy": _identity_strategy}),
    Check("case-class-keeps-first", "'class' on [2, 5, 3] keeps [:, :1, :]",
          _class_probe, _class_keeps_first, example={"strategy": "class"}),
    raises("error-unknown-name", "an unknown strategy name raises ValueError", {"strategy": "cls"}, ValueError),
    raises("error-none", "None is no strategy: ValueError", {"strategy": None}, ValueError),
])


@st.composite
def _count_inputs(draw):
    return {"num_vision_tokens": draw(s_fs.token_counts()), "strategy": draw(s_fs.feature_select_strategies())}


def _count_probe(view, ex: dict) -> dict:
    out = {"count": view.call(view.function, ex)}
    if view.provides("_get_vision_feature_selector"):
        selector = view.fn("_get_vision_feature_selector")
        feats = torch.zeros(1, ex["num_vision_tokens"], 4)
        out["kept"] = view.invoke(lambda: selector(ex["strategy"])(feats).shape[1])
    return out


def _count_matches_selector(ctx: Ctx, ex: dict, got: dict, _) -> None:
    kept = got.get("kept")
    if kept is None:  # the target has no selector: the reference's says how many tokens it keeps
        from ..reference import _get_vision_feature_selector

        feats = torch.zeros(1, ex["num_vision_tokens"], 4)
        kept = Outcome(value=int(_get_vision_feature_selector(ex["strategy"])(feats).shape[1]))
    if kept.exc is None and type(kept.value) is not int:
        raise ctx.diverge(f"the selector's output has {short(kept.value)} tokens (shape[1]), not an int", ex)
    compare_outcomes(ctx, kept, got["count"], ex)


NUM_SELECTED = FunctionSpec("get_num_selected_vision_tokens", "how many tokens a strategy keeps", [
    agrees("property-agrees", "equals the reference's count", _count_inputs()),
    Check("property-matches-selector", "equals the token count the selector actually keeps",
          _count_probe, _count_matches_selector, strategy=_count_inputs()),
    returns("case-default-576", "'default' on 577 tokens (CLIP-L/336) keeps 576",
            {"num_vision_tokens": 577, "strategy": "default"}, 576),
    raises("error-zero-tokens-default", "0 tokens cannot lose a class token: ValueError",
           {"num_vision_tokens": 0, "strategy": "default"}, ValueError),
    raises("error-unknown-strategy", "an unknown strategy raises ValueError",
           {"num_vision_tokens": 10, "strategy": "patch"}, ValueError),
])


# ---- resolve_visual_encoder_outputs -----------------------------------------

UPSTREAM_TESTS = "vllm tests/models/test_vision.py"

def _upstream_case(select_layers, loaded, max_layers, expected_layers):
    def build():
        return {"encoder_outputs": s_enc.hidden_states(loaded, 1, 2, 3), "post_layer_norm": None,
                "select_layers": select_layers, "max_possible_layers": max_layers}

    def expected():
        states = s_enc.hidden_states(max(expected_layers), 1, 2, 3)
        return torch.cat([states[k] for k in expected_layers], dim=-1)

    return build, expected


class _PlusHalf(torch.nn.Module):
    """A visible 'post norm': adds 0.5, so where it was applied shows in the values."""

    def forward(self, x):
        return x + 0.5


def _final_layer_case(select_layers, normed):
    def build():
        return {"encoder_outputs": s_enc.hidden_states(4, 1, 2, 1), "post_layer_norm": _PlusHalf(),
                "select_layers": select_layers, "max_possible_layers": 4}

    def expected():
        states = s_enc.hidden_states(4, 1, 2, 1)
        positions = [p if p >= 0 else 5 + p for p in select_layers]
        return torch.cat([states[p] + (0.5 if p == 4 and normed else 0.0) for p in positions], dim=-1)

    return build, expected


RESOLVE_CASES = []
for _id, _args in {
    "case-upstream-all-loaded-positive": ([1, 10], 10, 10, [1, 10]),
    "case-upstream-all-loaded-negative": ([-10, -1], 10, 10, [1, 10]),
    "case-upstream-truncated-positive": ([1, 10], 10, 20, [1, 10]),
    "case-upstream-truncated-negative": ([-20, -11], 10, 20, [1, 10]),
}.items():
    _b, _e = _upstream_case(*_args)
    RESOLVE_CASES.append(returns(_id, f"vLLM's own fixed case {_args} ({UPSTREAM_TESTS}::"
                                      "test_resolve_visual_encoder_outputs)", _b, _e))
for _id, _sel, _doc in [
    ("case-post-norm-final-negative", [1, -1], "post norm applies to the last layer written -1"),
    ("case-post-norm-final-positive", [1, 4], "post norm applies to the last layer written max_possible_layers"),
    ("case-post-norm-not-penultimate", [1, 3], "post norm does not apply to layer max_possible_layers - 1"),
]:
    _b, _e = _final_layer_case(_sel, True)
    RESOLVE_CASES.append(returns(_id, _doc, _b, _e))

def _proc_probe(view, ex: dict) -> dict:
    """The call, and what ``last_hs_proc`` was called on (read where the call ran)."""
    proc = ex.get("last_hs_proc")
    before = len(proc.calls) if proc is not None else 0  # the object may have run elsewhere in this process
    out = view.call(view.function, ex)
    return {"result": out, "last_hs_proc calls": list(proc.calls[before:]) if proc is not None else []}


def _proc_agrees(ctx: Ctx, ex: dict, got: dict, want: dict) -> None:
    compare_outcomes(ctx, want["result"], got["result"], ex)
    want_calls, got_calls = want["last_hs_proc calls"], got["last_hs_proc calls"]
    if got_calls != want_calls:
        layers = lambda calls: [None if c[2] is None else int(c[2] // 1000) for c in calls]  # noqa: E731
        raise ctx.diverge(f"last_hs_proc was called {len(got_calls)} time(s), on layers {layers(got_calls)} "
                          f"({got_calls}), but should be called {len(want_calls)} time(s), on layers "
                          f"{layers(want_calls)} ({want_calls})", ex)


RESOLVE = FunctionSpec("resolve_visual_encoder_outputs", "hidden states -> one tensor", [
    agrees("property-single-output", "one last-layer tensor: strategy then post norm",
           s_enc.encoder_output_problems(select=False)),
    agrees("property-layer-lookup", "selected loaded layers (either notation), no post norm, concatenated",
           s_enc.encoder_output_problems(with_norm=False)),
    agrees("property-post-norm-final-as-minus-one", "post norm on the last layer, selected last and written -1",
           s_enc.encoder_output_problems(with_norm=True, include_final=True, final_as="negative")),
    agrees("property-post-norm", "post norm: applied to the full encoder's last layer (either notation), only to it",
           s_enc.encoder_output_problems(with_norm=True)),
    Check("property-last-hs-proc-single", "last_hs_proc on the one last-layer tensor, once, before the strategy "
          "and the post norm", _proc_probe, _proc_agrees, needs_reference=True, ref_probe=_proc_probe,
          strategy=s_enc.encoder_output_problems(select=False, with_proc=True)),
    Check("property-last-hs-proc-layers", "last_hs_proc on the full encoder's last layer only (either notation), "
          "once per selection, before the strategy and the post norm", _proc_probe, _proc_agrees,
          needs_reference=True, ref_probe=_proc_probe, strategy=s_enc.encoder_output_problems(with_proc=True)),
    *RESOLVE_CASES,
    raises("error-list-without-select-layers", "a list of states needs select_layers: ValueError",
           lambda: {"encoder_outputs": s_enc.hidden_states(2, 1, 2, 2), "post_layer_norm": None}, ValueError),
    raises("error-missing-max-layers", "select_layers without max_possible_layers: ValueError",
           lambda: {"encoder_outputs": s_enc.hidden_states(2, 1, 2, 2), "post_layer_norm": None,
                    "select_layers": [1]}, ValueError),
    raises("error-empty-select-layers", "an empty selection: ValueError",
           lambda: {"encoder_outputs": s_enc.hidden_states(2, 1, 2, 2), "post_layer_norm": None,
                    "select_layers": [], "max_possible_layers": 2}, ValueError),
    raises("error-unloaded-layer-negative", "layer -1 of a 4-layer encoder with 2 loaded was not loaded: IndexError",
           lambda: {"encoder_outputs": s_enc.hidden_states(2, 1, 2, 2), "post_layer_norm": None,
                    "select_layers": [-1], "max_possible_layers": 4}, IndexError),
])


# ---- get_llm_pos_ids_for_vision ---------------------------------------------

POS_IDS = FunctionSpec("get_llm_pos_ids_for_vision", "M-RoPE position ids of one vision item", [
    agrees("property-agrees", "equals the reference's ids exactly (int64, same device)", s_pos.pos_id_inputs()),
    returns("case-two-frames", "2 frames of a 2x3 grid starting at 10",
            lambda: {"start_idx": 10, "vision_idx": 1, "spatial_merge_size": 1, "t_index": [0, 1],
                     "grid_hs": torch.tensor([5, 2]), "grid_ws": torch.tensor([5, 3])},
            lambda: torch.tensor([[10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11],
                                  [10, 10, 10, 11, 11, 11, 10, 10, 10, 11, 11, 11],
                                  [10, 11, 12, 10, 11, 12, 10, 11, 12, 10, 11, 12]])),
    returns("case-large-t-index", "a temporal position above 2**24 stays exact",
            lambda: {"start_idx": 0, "vision_idx": 0, "spatial_merge_size": 1, "t_index": [2**24 + 1],
                     "grid_hs": torch.tensor([1]), "grid_ws": torch.tensor([1])},
            lambda: torch.tensor([[2**24 + 1], [0], [0]])),
])


# ---- get_load_balance_assignment --------------------------------------------

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


# ---- data-parallel functions --------------------------------------------------
#
# Each check runs under two groups: "sim" (the in-process simulation, every
# example) and "gloo" (real processes; selected with --dp-group). The probe
# runs the target's function as every rank of the group where the target
# lives and reports each rank's outcome and its model calls (or the group's
# fault); the judge computes what every rank should return in the controller.

REAL_MAX_RANKS = 4
POOL_START_ALLOWANCE = 120.0  # a real group may have to start (fork, join) before the job


def _dp_kwargs(ex: dict) -> dict:
    return {"rope_type": ex["rope_type"]} if "rope_type" in ex else {}


def _dp_args(ex: dict, model):
    if "image_input" in ex:
        return [ex["image_input"], model]
    return [model, ex["pixel_values"], [list(g) for g in ex["grid_thw_list"]]]


def _dp_probe(group: str):
    def probe(view, ex: dict) -> dict:
        from . import rankpool
        from .simgroup import CollectiveMismatch, run_simulated

        world, spec = ex["world_size"], ex["model"]
        if group == "gloo":
            view.allow(POOL_START_ALLOWANCE + view.timeout)
            job = {"target": view.name, "function": view.function, "model": spec,
                   "args": _dp_args(ex, "<model>"), "kwargs": _dp_kwargs(ex)}
            try:
                outcomes = rankpool.get_pool(world, timeout=view.timeout).run(job)
            except rankpool.GroupFault as exc:
                return {"fault": str(exc), "hung": exc.hung}
            return {"ranks": [{"rank": o.rank, "outcome": Encoded(o.outcome), "calls": o.calls} for o in outcomes]}

        fn, models = view.fn(view.function), []

        def make_call(f):
            model = spec.build()
            models.append(model)
            args = [a.clone() if isinstance(a, torch.Tensor) else a for a in _dp_args(ex, model)]
            view.announce()
            return f(*args, **_dp_kwargs(ex))

        try:
            results = run_simulated(fn, make_call, world)
        except CollectiveMismatch as exc:
            return {"mismatch": str(exc)}
        except BaseException as exc:  # noqa: BLE001 - what a rank raised (with the rank in its notes)
            if view.in_controller and isinstance(exc, KeyboardInterrupt):
                raise  # the user interrupting the run while the reference ran
            return {"raised": Outcome(exc=exc)}
        return {"ranks": [{"rank": r, "outcome": Outcome(value=v), "calls": m.calls}
                          for r, (v, m) in enumerate(zip(results, models[-world:]))]}

    return probe


def _rank_results(ctx: Ctx, ex: dict, group: str, got: dict) -> list[dict]:
    """Each rank's result, or the group's failure as a divergence."""
    world = ex["world_size"]
    if group == "gloo":
        if "fault" in got:
            # A group that hung would wait out the deadline again on every further example,
            # and each fault costs a new group: shrink over a few, then stop at the last.
            ctx.faults += 1
            ctx.stop = got.get("hung") is True or ctx.faults > FAULT_SHRINKS
            raise ctx.diverge(f"real gloo group of {world}: {got['fault']}")
        for o in got["ranks"]:
            exc = o["outcome"].exc
            if exc is not None:
                what = "collective mismatch" if exc.short_name.endswith("CollectiveMismatch") else "raised"
                raise ctx.diverge(f"{what} in a real gloo group of {world}: {exc_name(exc)}: {exc.message} "
                                  f"(on rank {o['rank']})")
        return got["ranks"]
    if "mismatch" in got:
        raise ctx.diverge(f"collective mismatch in a simulated group of {world}: {got['mismatch']}")
    if "raised" in got:
        exc = got["raised"].exc
        notes = " ".join(exc.notes)
        raise ctx.diverge(f"raised {exc_name(exc)}: {exc.message} {notes}".strip())
    return got["ranks"]


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
        ranks = _rank_results(ctx, ex, group, got)
        for o in ranks:
            compare_outcomes(ctx, Outcome(value=want), o["outcome"], ex, path=f"rank {o['rank']}: result")
        share = -(-ex["image_input"].shape[0] // ex["world_size"])
        _check_calls(ctx, ranks, [[(share, None)]] * ex["world_size"])
    return judge


def _mrope_matches(group: str):
    def judge(ctx: Ctx, ex: dict, got: dict, _) -> None:
        from ..reference import get_load_balance_assignment

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
        ranks = _rank_results(ctx, ex, group, got)
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


def _sim_supported(ctx: Ctx, ex: dict) -> dict:
    why = ctx.target.facts.get("dp", {}).get(ctx.function)
    if why:
        raise Unsupported(why)
    return ex


def _dp_checks(check_id, doc, judge_for_group, strategy_for_ranks, examples=()):
    """The same check under the simulated group and under a real gloo group."""
    return [
        Check(check_id, doc + " (simulated group of 1-6 ranks)", _dp_probe("sim"), judge_for_group("sim"),
              strategy=strategy_for_ranks(s_dp.MAX_RANKS), examples=examples, group="sim", prepare=_sim_supported),
        Check(check_id + "-gloo", doc + f" (real gloo group of 1-{REAL_MAX_RANKS} processes)", _dp_probe("gloo"),
              judge_for_group("gloo"), strategy=strategy_for_ranks(REAL_MAX_RANKS),
              examples=tuple(e for e in examples if e["world_size"] <= REAL_MAX_RANKS), group="gloo"),
    ]


def _dp_cases(check_id, doc, judge_for_group, example):
    """A fixed case under the simulated group and under a real gloo group."""
    return [
        Check(check_id, doc + " (simulated group)", _dp_probe("sim"), judge_for_group("sim"), example=example,
              group="sim", prepare=_sim_supported),
        Check(check_id + "-gloo", doc + " (real gloo group)", _dp_probe("gloo"), judge_for_group("gloo"),
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


# ---- get_vision_encoder_info -------------------------------------------------

ANSWERS = ("get_image_size()", "get_patch_size()", "get_patch_grid_length()", "get_num_image_tokens(...)")


def _info_probe(view, ex: dict) -> dict:
    got = view.call(view.function, {"hf_config": ex["hf_config"]})
    if got.exc is not None:
        return {"info": got}
    info = got.value
    size = {"image_width": ex["image_width"], "image_height": ex["image_height"]}
    return {"info": Outcome(value=None), "answers": [
        view.invoke(lambda: info.get_image_size()),
        view.invoke(lambda: info.get_patch_size()),
        view.invoke(lambda: info.get_patch_grid_length()),
        view.invoke(lambda: info.get_num_image_tokens(**size)),
    ]}


def _info_agrees(ctx: Ctx, ex: dict, got: dict, want: dict) -> None:
    if not both_returned(ctx, want["info"], got["info"], ex, "an encoder info"):
        return
    for label, w, g in zip(ANSWERS, want["answers"], got["answers"]):
        compare_outcomes(ctx, w, g, ex, path=label)


def _info_case(answers):
    def judge(ctx: Ctx, ex: dict, got: dict, _) -> None:
        if got["info"].exc is not None:
            raise ctx.diverge(describe(got["info"]), ex)
        for label, want, outcome in zip(ANSWERS, answers, got["answers"]):
            compare_outcomes(ctx, Outcome(value=want), outcome, ex, path=label)
    return judge


def _hf(config_name, **kw):
    def build():
        import transformers
        from types import SimpleNamespace
        top = {k: kw[k] for k in kw if k == "spatial_merge_size"}
        vision = {k: v for k, v in kw.items() if k != "spatial_merge_size"}
        return SimpleNamespace(vision_config=getattr(transformers, config_name)(**vision), **top)
    return build


ENCODER_INFO = FunctionSpec("get_vision_encoder_info", "CLIP / SigLIP / Pixtral token geometry", [
    Check("property-agrees", "the four answers equal the reference's for drawn configs and image sizes",
          _info_probe, _info_agrees, strategy=s_info.encoder_info_problems(), needs_reference=True,
          ref_probe=_info_probe),
    Check("case-clip-336", "CLIP 336/14: 24 patches a side, 577 tokens",
          _info_probe, _info_case([336, 14, 24, 577]),
          example=lambda: {"hf_config": _hf("CLIPVisionConfig", image_size=336, patch_size=14)(),
                           "image_width": 640, "image_height": 480}),
    Check("case-siglip-384", "SigLIP 384/14: 27 a side, 729 tokens",
          _info_probe, _info_case([384, 14, 27, 729]),
          example=lambda: {"hf_config": _hf("SiglipVisionConfig", image_size=384, patch_size=14)(),
                           "image_width": 640, "image_height": 480}),
    Check("case-pixtral-wide", "Pixtral 1024/16, a 2000x500 image scales to 1024x256: 64 x 16 tokens",
          _info_probe, _info_case([1024, 16, 64, 1024]),
          example=lambda: {"hf_config": _hf("PixtralVisionConfig", image_size=1024, patch_size=16)(),
                           "image_width": 2000, "image_height": 500}),
    Check("case-pixtral-merge", "Pixtral with spatial_merge_size 2: 32-pixel tokens; 100x50 -> 4 x 2 tokens",
          _info_probe, _info_case([1024, 32, 32, 8]),
          example=lambda: {"hf_config": _hf("PixtralVisionConfig", image_size=1024, patch_size=16,
                                            spatial_merge_size=2)(),
                           "image_width": 100, "image_height": 50}),
    raises("error-unsupported-config", "a ViT config is not supported: NotImplementedError",
           lambda: {"hf_config": _hf("ViTConfig")()}, NotImplementedError),
    Check("case-clip-indivisible", "CLIP 225/14 (not a multiple): the grid floors to 16, 257 tokens, as in "
          "transformers' CLIPVisionEmbeddings",
          _info_probe, _info_case([225, 14, 16, 257]),
          example=lambda: {"hf_config": _hf("CLIPVisionConfig", image_size=225, patch_size=14)(),
                           "image_width": 640, "image_height": 480}),
])


# ---- get_vit_attn_backend ----------------------------------------------------

def _env_probe(view, ex: dict) -> Outcome:
    with adapter.environment(VLLM_ATTENTION_BACKEND="FLASH_ATTN"):
        return view.call(view.function, ex)


def _env_ignored(ctx: Ctx, ex: dict, got: Outcome, want: Outcome) -> None:
    compare_outcomes(ctx, want, got, ex)


def _sim_prepare(ctx: Ctx, ex: dict) -> dict:
    """The facts with the installed vLLM's release group, the override picked; or why not."""
    from ..reference.backend import vision_backends

    from . import platforms

    if not ctx.target.facts.get("current_platform"):
        raise Unsupported(f"{ctx.target.name} has no module-level current_platform to install a simulated "
                          "platform through")
    group = platforms.release_group()
    if group is None:
        raise Unsupported("the installed vLLM's selection is simulated for 0.11.2, 0.27.x and 0.33.x only "
                          "(docs/backend.md)")
    facts = dataclasses.replace(ex["facts"], group=group)
    out = dict(ex, facts=facts)
    pick = ex.get("attn_backend_override")
    if isinstance(pick, s_backend.OverridePick):
        out["attn_backend_override"] = pick.resolve(vision_backends(facts))
    override = out.get("attn_backend_override")
    if override is not None and not (facts.override_source == "argument" and ctx.target.facts.get("private_backend")):
        why = adapter.refusal("get_vit_attn_backend", ctx.target.forms, out)
        if why:
            raise NotApplicable(why)
    return out


def _sim_call(view, facts, head_size, dtype, override) -> dict:
    """The target through its vision function (the override from the argument or
    the multimodal config, as the facts say), and, for vLLM itself, through the
    platform method. Runs where the target lives."""
    from . import platforms

    module = view.module
    kwargs = {"head_size": head_size, "dtype": dtype, "attn_backend_override": override}
    private = getattr(module, "_get_vit_attn_backend", None)
    enum_cls = adapter.backend_enum(module)
    # The name becomes the release's enum member inside the call, as a user's code
    # would convert it: a name the release does not know (XFORMERS in 0.33.0, whose
    # enum raises ValueError for it) is then that call's outcome, not a harness error.
    with platforms.simulate(facts, module) as platform:
        if override is not None and facts.override_source == "argument" and private is not None:
            got = view.invoke(lambda: private(head_size, dtype,
                                              attn_backend_override=adapter.to_enum(enum_cls, override)))
        else:
            got = view.call(view.function, kwargs)
        direct = None
        if view.target.kind == "vllm" and (override is None or private is not None):
            direct = view.invoke(lambda: platforms.call_platform(platform, head_size, dtype,
                                                                 adapter.to_enum(enum_cls, override)))
    return {"got": got, "direct": direct}


def _sim_probe(view, ex: dict) -> dict:
    return _sim_call(view, ex["facts"], ex["head_size"], ex["dtype"], ex["attn_backend_override"])


def _sim_ref_probe(view, ex: dict) -> Outcome:
    from ..reference.backend import use_platform

    kwargs = {k: ex[k] for k in ("head_size", "dtype", "attn_backend_override")}
    with use_platform(ex["facts"]):
        return view.call(view.function, kwargs)


def _backend_simulated(ctx: Ctx, ex: dict, got: dict, want: Outcome) -> None:
    compare_outcomes(ctx, want, got["got"], ex)
    if got["direct"] is not None:
        try:
            compare_outcomes(ctx, want, got["direct"], ex)
        except AssertionError as exc:
            raise ctx.diverge(f"platform method: {getattr(exc, 'what', exc)}", ex) from None


def _name_of(outcome: Outcome) -> str:
    if outcome.exc is not None:
        return f"raised {exc_name(outcome.exc)}"
    value = outcome.value
    return value.name if hasattr(value, "cls") and hasattr(value, "name") else value if type(value) is str \
        else short(value)


def _grid_prepare(ctx: Ctx, ex: dict) -> dict:
    from ..reference.backend import PlatformFacts

    prepared = _sim_prepare(ctx, dict(ex, facts=PlatformFacts("cuda")))
    return dict(ex, group=prepared["facts"].group)


def _grid_points(known: bool):
    return [(fa4, cc, dtype, head) for fa4 in (False, True) for cc, dtype, head in s_backend.grid()
            if (cc is not None) == known]


def _grid_probe(view, ex: dict) -> list:
    from ..reference.backend import PlatformFacts

    out = []
    for fa4, cc, dtype, head in _grid_points(ex["known"]):
        facts = PlatformFacts("cuda", capability=cc, fa4=fa4, group=ex["group"])
        out.append(_sim_call(view, facts, head, dtype, None))
    return out


def _cuda_grid(ctx: Ctx, ex: dict, got: list, _) -> None:
    """Every (capability, dtype, head size, FA4) of the acceptance grid, no
    override, every kernel importable; all mismatches in one sentence.
    ``ex["known"]``: the known capabilities, or only the unknown one."""
    from ..reference import get_vit_attn_backend
    from ..reference.backend import PlatformFacts, use_platform

    points, bad, wrong = 0, {}, 0
    for (fa4, cc, dtype, head), observed in zip(_grid_points(ex["known"]), got):
        facts = PlatformFacts("cuda", capability=cc, fa4=fa4, group=ex["group"])
        with use_platform(facts):
            want = get_vit_attn_backend(head, dtype)
        for where, outcome in (("", observed["got"]), ("platform method: ", observed["direct"])):
            if outcome is None:
                continue
            points += 0 if where else 1
            if _name_of(outcome) != want:
                wrong += 0 if where else 1
                key = (f"{where}cc={cc} {str(dtype).replace('torch.', '')}"
                       f"{' fa4' if fa4 else ''} returned {_name_of(outcome)}, should be {want}")
                bad.setdefault(key, []).append(head)
    if bad:
        detail = "; ".join(f"{k} (heads {v})" for k, v in sorted(bad.items()))
        raise ctx.diverge(f"{wrong} of {points} simulated CUDA grid points differ: {detail}",
                          {"grid": "capabilities x dtypes x head sizes x fa4"})


def _sim_check(check_id: str, doc: str, facts, override: bool | None, examples=()) -> Check:
    return Check(check_id, doc, _sim_probe, _backend_simulated, strategy=s_backend.simulated_queries(facts, override),
                 needs_reference=True, examples=tuple(examples), ref_probe=_sim_ref_probe, prepare=_sim_prepare)


def _edge(facts, head, dtype, override=None) -> dict:
    return {"facts": facts, "head_size": head, "dtype": dtype, "attn_backend_override": override}


def _edges():
    from ..reference.backend import PlatformFacts as F

    return {
        "cuda": [_edge(F("cuda", capability=(9, 0)), 80, torch.bfloat16),
                 _edge(F("cuda", capability=(9, 0)), 80, torch.float32),
                 _edge(F("cuda", capability=(7, 5)), 64, torch.float16),
                 _edge(F("cuda", capability=(9, 0), fa4=True), 320, torch.float16)],
        "cuda-override": [_edge(F("cuda", capability=(9, 0)), 64, torch.float16, "TORCH_SDPA"),
                          _edge(F("cuda", capability=(9, 0), override_source="multimodal_config"), 64,
                                torch.float16, s_backend.OverridePick("listed", 0))],
        # a name the release's enum may not have at all (0.33.0 dropped XFORMERS): refused, not a harness error
        "cuda-override-unlisted": [_edge(F("cuda", capability=(9, 0)), 64, torch.float16, "XFORMERS")],
        "rocm": [_edge(F("rocm", arch="gfx942", flash_attn_pkg=True), 80, torch.bfloat16),
                 _edge(F("rocm", arch="gfx1100", triton_amd=True), 80, torch.float16)],
        "xpu": [_edge(F("xpu"), 64, torch.float16)],
        "cpu": [_edge(F("cpu"), 64, torch.float16, "TORCH_SDPA"), _edge(F("unspecified"), 72, torch.float32)],
    }


_EDGES = _edges()


def _override_prepare(ctx: Ctx, ex: dict) -> dict:
    why = adapter.refusal(ctx.function, ctx.target.forms, ex)
    if why:
        raise NotApplicable(why)
    return ex


def _with_form_check(check: Check) -> Check:
    check.prepare = check.prepare or _override_prepare
    return check


BACKEND = FunctionSpec("get_vit_attn_backend", "the ViT attention backend: this machine, and simulated platforms", [
    agrees("property-default", "no override: the platform's default for any head size and dtype",
           s_backend.backend_queries(override=False)),
    _with_form_check(returns("case-override-supported", "an override the platform supports is honoured",
                             {"head_size": 64, "dtype": torch.float16, "attn_backend_override": "TORCH_SDPA"},
                             "TORCH_SDPA")),
    _with_form_check(raises("error-override-unsupported", "FLASH_ATTN on a CPU: ValueError naming what is accepted",
                            {"head_size": 64, "dtype": torch.float16, "attn_backend_override": "FLASH_ATTN"},
                            ValueError)),
    Check("case-env-does-not-select", "VLLM_ATTENTION_BACKEND (the decoder's setting) does not change the answer",
          _env_probe, _env_ignored, example={"head_size": 80, "dtype": torch.bfloat16}, needs_reference=True,
          ref_probe=call_probe),
    _sim_check("property-cuda-simulated", "simulated CUDA of a known capability (FA4, importable kernels), "
               "no override: the decision table", s_backend.cuda_facts(known_capability=True), False,
               _EDGES["cuda"]),
    _sim_check("property-cuda-unknown-capability-simulated", "simulated CUDA whose capability is unknown, "
               "no override", s_backend.cuda_facts(known_capability=False), False),
    _sim_check("property-cuda-override-listed-simulated", "simulated CUDA, an override the platform lists (from "
               "the argument or the multimodal config): honoured", s_backend.cuda_facts(all_kernels=True),
               "listed", _EDGES["cuda-override"]),
    _sim_check("property-cuda-override-unlisted-simulated", "simulated CUDA, an override the platform does not "
               "list: ValueError", s_backend.cuda_facts(all_kernels=True), "unlisted",
               _EDGES["cuda-override-unlisted"]),
    _sim_check("property-rocm-simulated", "simulated ROCm (arch, flash_attn, Triton-AMD, AITER), no override",
               s_backend.rocm_facts(), False, _EDGES["rocm"]),
    _sim_check("property-rocm-override-listed-simulated", "simulated ROCm, a listed override: honoured",
               s_backend.rocm_facts(), "listed"),
    _sim_check("property-rocm-override-unlisted-simulated", "simulated ROCm, an unlisted override: ValueError",
               s_backend.rocm_facts(), "unlisted"),
    _sim_check("property-xpu-simulated", "simulated XPU, no override", s_backend.xpu_facts(), False, _EDGES["xpu"]),
    _sim_check("property-xpu-override-listed-simulated", "simulated XPU, a listed override: honoured",
               s_backend.xpu_facts(), "listed"),
    _sim_check("property-xpu-override-unlisted-simulated", "simulated XPU, an unlisted override: ValueError",
               s_backend.xpu_facts(), "unlisted"),
    _sim_check("property-cpu-simulated", "vLLM's CPU and Unspecified platform classes, no override or a listed one",
               s_backend.cpu_facts(), "listed", _EDGES["cpu"]),
    _sim_check("property-cpu-override-unlisted-simulated", "vLLM's CPU and Unspecified platform classes, an "
               "unlisted override: ValueError", s_backend.cpu_facts(), "unlisted"),
    Check("case-cuda-grid", "simulated CUDA: capability 7.0-12.0 x fp16/bf16/fp32 x head sizes 16-320 x FA4, "
          "each equal to the decision table", _grid_probe, _cuda_grid, example={"known": True},
          needs_reference=True, prepare=_grid_prepare),
    Check("case-cuda-grid-unknown-capability", "the same grid with the capability unknown",
          _grid_probe, _cuda_grid, example={"known": False}, needs_reference=True, prepare=_grid_prepare),
])


REGISTRY: list[FunctionSpec] = [
    *ALIASES, FEATURE_SELECTOR, NUM_SELECTED, RESOLVE, POS_IDS, LOAD_BALANCE, DP_PLAIN, DP_MROPE,
    ENCODER_INFO, BACKEND,
]
BY_NAME = {spec.name: spec for spec in REGISTRY}

# Refusals by the target's form apply to every check of these functions (the
# adapter knows which inputs a release's form cannot take).
for _spec in (RESOLVE, BACKEND):
    for _check in _spec.checks:
        _check.prepare = _check.prepare or _override_prepare
