"""Records of resolve_visual_encoder_outputs (reference/encoder_outputs.py,
strategies/encoder_outputs.py)."""

from __future__ import annotations

import torch

from ...strategies import encoder_outputs as s_enc
from ..adapter import prepare_by_form
from ..checks import UPSTREAM_TESTS, Check, Ctx, FunctionSpec, agrees, compare_outcomes, raises, returns


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


# A release's form may not take every input (feature_select_strategy, last_hs_proc): refused per check.
for _check in RESOLVE.checks:
    _check.prepare = _check.prepare or prepare_by_form

RECORDS = [RESOLVE]
