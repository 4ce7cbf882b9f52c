"""Resolving a vision encoder's hidden states into the one tensor a model uses."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .feature_select import VisionFeatureSelectStrategy, _get_vision_feature_selector


def _hidden_state_index(layer: int, num_loaded: int, max_layers: int) -> int:
    """Map a layer index of the *full* encoder to a position in the loaded list.

    The full encoder's hidden states are ``max_layers + 1`` entries: the
    encoder input (0) then the output of layers 1..max_layers. A non-negative
    index names that entry; a negative index counts from the end of the full
    list (-1 is the output of the last layer of the full encoder).
    """
    full = max_layers + 1
    position = layer if layer >= 0 else full + layer
    if not 0 <= position <= num_loaded or layer >= full:
        raise IndexError(
            f"layer {layer} is not among the loaded hidden states "
            f"({num_loaded} of {max_layers} layers loaded: valid layers are "
            f"0..{num_loaded} and {-full}..{num_loaded - full})"
        )
    return position


def resolve_visual_encoder_outputs(
    encoder_outputs: torch.Tensor | list[torch.Tensor],
    post_layer_norm: torch.nn.LayerNorm | None,
    *,
    select_layers: list[int] | None = None,
    max_possible_layers: int | None = None,
    last_hs_proc: Callable[[torch.Tensor], torch.Tensor] | None = None,
    feature_select_strategy: VisionFeatureSelectStrategy | None = None,
) -> torch.Tensor:
    """Resolve encoder outputs into a single tensor.

    Without ``select_layers``: ``encoder_outputs`` is the last layer's output
    (a tensor, else ``ValueError``); ``last_hs_proc`` (if any) is applied to
    it, then the feature-select strategy (if any), then ``post_layer_norm``
    (if any).

    With ``select_layers``: ``encoder_outputs`` is the list of hidden states of
    the *loaded* encoder: its input, then one entry per loaded layer
    (``len - 1`` layers loaded out of ``max_possible_layers``, which is
    required, else ``ValueError``). ``select_layers`` must be non-empty
    (else ``ValueError``). Each index names a hidden state of the full encoder:
    ``i >= 0`` is entry ``i``; ``i < 0`` counts from the end of the full
    encoder's ``max_possible_layers + 1`` entries, so ``-1`` is the full
    encoder's last layer whatever was loaded. An index naming a hidden state
    that was not loaded raises ``IndexError``. The output of the full
    encoder's last layer (entry ``max_possible_layers``, however it is
    written: ``max_possible_layers`` or ``-1``) gets, wherever it is
    selected, ``last_hs_proc`` first (once for each time it is selected, on
    that hidden state), and ``post_layer_norm`` after the feature-select
    strategy; no other state gets either. Each selected state gets the
    feature-select strategy. The states are concatenated on the last
    dimension.

    ``last_hs_proc`` is a parameter since vLLM 0.15 (e.g. SigLIP's pooling
    head); the documented page does not list it.
    """
    return _resolve(encoder_outputs, post_layer_norm, select_layers, max_possible_layers, last_hs_proc,
                    feature_select_strategy, _is_final_layer)


def _is_final_layer(select_layers: list[int], index: int, position: int, max_possible_layers: int) -> bool:
    """The contract's rule: entry ``index`` of ``select_layers`` names the full encoder's last layer."""
    return position == max_possible_layers


FinalRule = Callable[[list, int, int, int], bool]


def _resolve(encoder_outputs, post_layer_norm, select_layers, max_possible_layers, last_hs_proc,
             feature_select_strategy, is_final: FinalRule) -> torch.Tensor:
    """The implementation, with the rule deciding which selected states are
    "the last layer" (for ``last_hs_proc`` and the post norm) as a parameter:
    the contract's, or a release's recorded departure (``reference.departures``)."""
    select = (
        _get_vision_feature_selector(feature_select_strategy)
        if feature_select_strategy is not None
        else None
    )
    if select_layers is None:
        if not isinstance(encoder_outputs, torch.Tensor):
            raise ValueError(
                "encoder_outputs must be a single tensor when select_layers is "
                f"not given (got {type(encoder_outputs).__name__})"
            )
        out = last_hs_proc(encoder_outputs) if last_hs_proc is not None else encoder_outputs
        out = select(out) if select is not None else out
        return post_layer_norm(out) if post_layer_norm is not None else out

    if max_possible_layers is None:
        raise ValueError("max_possible_layers is required alongside select_layers")
    if len(select_layers) == 0:
        raise ValueError("select_layers must name at least one layer")
    num_loaded = len(encoder_outputs) - 1
    pieces = []
    for index, layer in enumerate(select_layers):
        position = _hidden_state_index(layer, num_loaded, max_possible_layers)
        state = encoder_outputs[position]
        final = is_final(select_layers, index, position, max_possible_layers)
        if last_hs_proc is not None and final:
            state = last_hs_proc(state)
        if select is not None:
            state = select(state)
        if post_layer_norm is not None and final:
            state = post_layer_norm(state)
        pieces.append(state)
    return torch.cat(pieces, dim=-1)
