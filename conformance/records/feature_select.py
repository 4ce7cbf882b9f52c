"""Records of the feature-selection family: the two strategy aliases, the
selector and the token count (reference/feature_select.py,
strategies/feature_select.py)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from ...reference import _get_vision_feature_selector
from ...strategies import feature_select as s_fs
from ..checks import Check, Ctx, FunctionSpec, agrees, both_returned, compare_outcomes, describe, raises, returns
from ..plain import Outcome, describe_type, qualified_name, render_type, short


# ---- the type aliases ---------------------------------------------------------

NAMED = ["class", "default", "full"]
_TENSOR = ["class", qualified_name(torch.Tensor)]


def _alias_probe(view, _: dict) -> Outcome:
    alias = view.fn(view.function)
    return view.invoke(describe_type, alias)


def _is_named_literal(desc) -> bool:
    return (type(desc) is list and len(desc) == 2 and desc[0] == "Literal" and type(desc[1]) is list
            and all(type(v) is str for v in desc[1]) and sorted(desc[1]) == sorted(NAMED) and len(desc[1]) == 3)


def _check_str_alias(ctx: Ctx, _: dict, got: Outcome, __) -> None:
    if got.exc is not None:
        raise ctx.diverge(f"examining VisionFeatureSelectStrategyStr {describe(got)}", {})
    if not _is_named_literal(got.value):
        raise ctx.diverge(f"VisionFeatureSelectStrategyStr={render_type(got.value)}, but should be "
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
            f"VisionFeatureSelectStrategy={render_type(desc)}, but should be the union of "
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


# ---- the selector and the count -------------------------------------------------

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


RECORDS = [*ALIASES, FEATURE_SELECTOR, NUM_SELECTED]
