"""Strategies for ``resolve_visual_encoder_outputs``: encoder outputs whose
layers are distinguishable, layer selections against loaded / maximum layer
counts, post norms and feature-select strategies."""

from __future__ import annotations

import torch
from hypothesis import event, strategies as st

from ._budget import MAX_ELEMENTS, MAX_LAYERS
from ._validate import check_bool, check_int, check_one_of, fail
from .feature_select import feature_select_strategies

FINAL_AS = (None, "negative")


def hidden_states(num_loaded: int, batch: int, tokens: int, dim: int, dtype=torch.float32) -> list[torch.Tensor]:
    """The encoder input then one ``[batch, tokens, dim]`` state per loaded layer;
    state ``k`` holds ``1000 * k + arange``, so the layer of any slice can be read off.

    Not a strategy (fixed cases build their states with it), checked the same
    way: ``num_loaded`` an int from 0 to ``MAX_LAYERS``, ``batch``, ``tokens``
    and ``dim`` ints from 0, all the states together at most
    ``MAX_ELEMENTS`` elements, ``dtype`` a ``torch.dtype``.
    """
    where = "hidden_states"
    check_int(where, "num_loaded", num_loaded, 0, MAX_LAYERS, cap="MAX_LAYERS")
    for name, value in (("batch", batch), ("tokens", tokens), ("dim", dim)):
        check_int(where, name, value, 0)
    if not isinstance(dtype, torch.dtype):
        fail(where, f"dtype={dtype!r} is not a torch.dtype")
    total = (num_loaded + 1) * batch * tokens * dim
    if total > MAX_ELEMENTS:
        fail(where, f"(num_loaded + 1) * batch * tokens * dim = {total} elements is above the cap "
                    f"MAX_ELEMENTS={MAX_ELEMENTS} (strategies/_budget.py; VVC_EXAMPLE_SCALE raises it)")
    return _hidden_states(num_loaded, batch, tokens, dim, dtype)


def _hidden_states(num_loaded: int, batch: int, tokens: int, dim: int, dtype=torch.float32) -> list[torch.Tensor]:
    base = torch.arange(batch * tokens * dim, dtype=torch.float64).reshape(batch, tokens, dim)
    return [(base + 1000 * k).to(dtype) for k in range(num_loaded + 1)]


@st.composite
def encoder_shapes(draw) -> dict:
    """``max_possible_layers``, ``num_loaded`` (a truncated encoder loads fewer)
    and the state shape, with every state within the element budget."""
    max_layers = draw(st.integers(1, MAX_LAYERS))
    num_loaded = draw(st.sampled_from([max_layers, max_layers]) | st.integers(1, max_layers))
    batch = draw(st.integers(1, 2))
    per_state = max(4, MAX_ELEMENTS // (4 * (num_loaded + 1)))
    tokens = draw(st.integers(1, max(1, min(12, per_state // batch))))
    dim = draw(st.integers(1, max(1, min(8, per_state // (batch * tokens)))))
    return {"max_possible_layers": max_layers, "num_loaded": num_loaded, "batch": batch, "tokens": tokens, "dim": dim}


def layer_selections(max_possible_layers: int, num_loaded: int, include_final: bool | None = None,
                     final_as: str | None = None) -> st.SearchStrategy[list[int]]:
    """Non-empty selections of *loaded* hidden states (1 to 4 entries, 5 with
    ``include_final``), each written as a non-negative index or as a negative
    index relative to the full encoder.

    ``max_possible_layers``: an int from 1 to ``MAX_LAYERS``; ``num_loaded``:
    an int from 0 to ``max_possible_layers`` (fewer: a truncated encoder).
    ``include_final``: None draws freely; False never selects the full
    encoder's last layer (so a post norm does not apply); True selects it
    exactly once, at the end (then every layer must be loaded:
    ``num_loaded == max_possible_layers``). ``final_as`` (only with
    ``include_final=True``): None draws the notation of that last entry,
    ``"negative"`` writes it -1.
    """
    where = "layer_selections"
    check_int(where, "max_possible_layers", max_possible_layers, 1, MAX_LAYERS, cap="MAX_LAYERS")
    check_int(where, "num_loaded", num_loaded, 0)
    if num_loaded > max_possible_layers:
        fail(where, f"num_loaded={num_loaded!r} is greater than max_possible_layers={max_possible_layers!r}")
    _check_final(where, include_final, final_as)
    if include_final and num_loaded != max_possible_layers:
        fail(where, f"include_final=True needs every layer loaded, but num_loaded={num_loaded!r} is less than "
                    f"max_possible_layers={max_possible_layers!r}")
    return _layer_selections(max_possible_layers, num_loaded, include_final, final_as)


def _check_final(where: str, include_final, final_as) -> None:
    check_bool(where, "include_final", include_final, allow_none=True)
    check_one_of(where, "final_as", final_as, FINAL_AS)
    if final_as is not None and include_final is not True:
        fail(where, f"final_as={final_as!r} needs include_final=True (got include_final={include_final!r})")


@st.composite
def _layer_selections(draw, max_possible_layers: int, num_loaded: int, include_final: bool | None,
                      final_as: str | None) -> list[int]:
    full = max_possible_layers + 1
    candidates = list(range(num_loaded + 1))
    if include_final is not None:
        candidates = [p for p in candidates if p != max_possible_layers]
        if not candidates:
            candidates = [0]
    positions = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=4))
    if include_final:
        positions.append(max_possible_layers)
    layers = [p if draw(st.booleans()) else p - full for p in positions]
    if include_final and final_as == "negative":
        layers[-1] = -1
    return layers


def post_norms(dim: int) -> st.SearchStrategy:
    """A LayerNorm over ``dim`` with drawn, non-trivial weights (never None:
    :func:`encoder_output_problems` draws whether there is one).
    ``dim``: an int from 1 to ``MAX_ELEMENTS``."""
    check_int("post_norms", "dim", dim, 1, MAX_ELEMENTS, cap="MAX_ELEMENTS")

    def build(seed: int) -> torch.nn.LayerNorm:
        norm = torch.nn.LayerNorm(dim)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            norm.weight.copy_(torch.rand(dim, generator=generator) + 0.5)
            norm.bias.copy_(torch.rand(dim, generator=generator) - 0.5)
        return norm

    return st.integers(0, 2**16).map(build)


class HeadProc(torch.nn.Module):
    """A visible ``last_hs_proc`` (like SigLIP's pooling head, it mixes tokens):
    ``2 * x + x.sum(tokens)``, so whether, where, how often and in which order
    (before the feature-select strategy, before the post norm) it was applied
    shows in the values. Each call is recorded in ``calls`` as (exact type of
    the argument, its shape, its first value: the layer of a hidden state
    from :func:`hidden_states` is ``first // 1000``)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def forward(self, x):
        first = float(x.flatten()[0]) if isinstance(x, torch.Tensor) and x.numel() else None
        self.calls.append((type(x).__name__ if type(x) is torch.Tensor else f"not a tensor: {type(x).__name__}",
                           tuple(x.shape) if isinstance(x, torch.Tensor) else None, first))
        return 2 * x + x.sum(dim=-2, keepdim=True)


def encoder_output_problems(select: bool = True, with_norm: bool | None = None, include_final: bool | None = None,
                            final_as: str | None = None, with_proc: bool = False) -> st.SearchStrategy[dict]:
    """Keyword arguments for ``resolve_visual_encoder_outputs``.

    ``select`` (True or False): draw ``select_layers`` over a list of hidden
    states (else a single last-layer tensor). ``with_norm``: None draws,
    True/False forces a post norm or none. ``include_final`` (None, True or
    False) and ``final_as`` (None or ``"negative"``, only with
    ``include_final=True``) go to :func:`layer_selections`, so they need
    ``select=True``. ``with_proc`` (True or False): pass a :class:`HeadProc`
    as ``last_hs_proc`` (a parameter since vLLM 0.15).
    """
    where = "encoder_output_problems"
    check_bool(where, "select", select)
    check_bool(where, "with_norm", with_norm, allow_none=True)
    _check_final(where, include_final, final_as)
    check_bool(where, "with_proc", with_proc)
    if not select and include_final is not None:
        fail(where, f"include_final={include_final!r} needs select=True (a single tensor has no layer selection)")
    return _encoder_output_problems(select, with_norm, include_final, final_as, with_proc)


@st.composite
def _encoder_output_problems(draw, select: bool, with_norm: bool | None, include_final: bool | None,
                             final_as: str | None, with_proc: bool) -> dict:
    shape = draw(encoder_shapes())
    if include_final:
        shape["num_loaded"] = shape["max_possible_layers"]
    # unchecked: with include_final the states can exceed MAX_ELEMENTS (num_loaded is raised to
    # max_possible_layers after encoder_shapes sized the states for fewer); kept as drawn so that the
    # suite's inputs stay the same (tests/meta/test_strategy_reach.py records it as a known violation)
    states = _hidden_states(shape["num_loaded"], shape["batch"], shape["tokens"], shape["dim"])
    norm_on = draw(st.booleans()) if with_norm is None else with_norm
    norm = draw(post_norms(shape["dim"])) if norm_on else None
    # no batch folds here: the strategy meets the real hidden states, whose batch is the input's,
    # so a batch-dependent count tells nothing more than a slice does
    strategy = draw(st.none() | feature_select_strategies(include_folds=False))
    proc = {"last_hs_proc": HeadProc()} if with_proc else {}
    if not select:
        return {"encoder_outputs": states[-1], "post_layer_norm": norm, **proc, "feature_select_strategy": strategy}
    layers = draw(_layer_selections(shape["max_possible_layers"], shape["num_loaded"], include_final, final_as))
    finals = sum(1 for layer in layers if layer in (shape["max_possible_layers"], -1))
    if finals:
        event("resolve: the final layer selected" + (" more than once" if finals > 1 else ""))
        if layers[-1] not in (shape["max_possible_layers"], -1):
            event("resolve: the final layer selected, not last")
    if any(layer == shape["max_possible_layers"] - 1 for layer in layers):
        event("resolve: layer max_possible_layers - 1 selected (the penultimate), written positively")
    if shape["num_loaded"] < shape["max_possible_layers"]:
        event("resolve: a truncated encoder")
    return {
        "encoder_outputs": states,
        "post_layer_norm": norm,
        "select_layers": layers,
        "max_possible_layers": shape["max_possible_layers"],
        **proc,
        "feature_select_strategy": strategy,
    }
