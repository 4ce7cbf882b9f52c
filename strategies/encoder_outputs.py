"""Strategies for ``resolve_visual_encoder_outputs``: encoder outputs whose
layers are distinguishable, layer selections against loaded / maximum layer
counts, post norms and feature-select strategies."""

from __future__ import annotations

import torch
from hypothesis import event, strategies as st

from ._budget import MAX_ELEMENTS, MAX_LAYERS
from .feature_select import feature_select_strategies


def hidden_states(num_loaded: int, batch: int, tokens: int, dim: int, dtype=torch.float32) -> list[torch.Tensor]:
    """The encoder input then one ``[batch, tokens, dim]`` state per loaded layer;
    state ``k`` holds ``1000 * k + arange``, so the layer of any slice can be read off."""
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


@st.composite
def layer_selections(draw, max_possible_layers: int, num_loaded: int, include_final: bool | None = None,
                     final_as: str | None = None) -> list[int]:
    """Non-empty selections of *loaded* hidden states, each written as a
    non-negative index or as a negative index relative to the full encoder.

    ``include_final``: None draws freely; False never selects the full
    encoder's last layer (so a post norm does not apply); True selects it
    exactly once, at the end (then every layer must be loaded). ``final_as``:
    None draws the notation of that last entry, ``"negative"`` writes it -1.
    """
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
    """None, or a LayerNorm over ``dim`` with drawn, non-trivial weights."""

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


@st.composite
def encoder_output_problems(draw, select: bool = True, with_norm: bool | None = None, include_final: bool | None = None,
                            final_as: str | None = None, with_proc: bool = False) -> dict:
    """Keyword arguments for ``resolve_visual_encoder_outputs``.

    ``select``: draw ``select_layers`` over a list of hidden states (else a
    single last-layer tensor). ``with_norm``: None draws, True/False forces a
    post norm or none. ``include_final`` and ``final_as`` go to
    :func:`layer_selections`. ``with_proc``: pass a :class:`HeadProc` as
    ``last_hs_proc`` (a parameter since vLLM 0.15).
    """
    shape = draw(encoder_shapes())
    if include_final:
        shape["num_loaded"] = shape["max_possible_layers"]
    states = hidden_states(shape["num_loaded"], shape["batch"], shape["tokens"], shape["dim"])
    norm_on = draw(st.booleans()) if with_norm is None else with_norm
    norm = draw(post_norms(shape["dim"])) if norm_on else None
    # no batch folds here: the strategy meets the real hidden states, whose batch is the input's,
    # so a batch-dependent count tells nothing more than a slice does
    strategy = draw(st.none() | feature_select_strategies(include_folds=False))
    proc = {"last_hs_proc": HeadProc()} if with_proc else {}
    if not select:
        return {"encoder_outputs": states[-1], "post_layer_norm": norm, **proc, "feature_select_strategy": strategy}
    layers = draw(layer_selections(shape["max_possible_layers"], shape["num_loaded"], include_final, final_as))
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
