"""Known departures: the rules by which vLLM releases are recorded to depart
from the contract, each stated exactly as a small function.

An expectations entry may name one or several (``FUNCTION CHECK rule=NAME``,
``rule=A,B``: an input follows the entry when it follows any one of them). The check
then compares the target, on every input, with the contract (the reference)
and with the rule: an input where it matches the rule is a recorded
departure; an input where it matches neither is a new divergence, reported
as such even though the check has an entry. So a recorded bug cannot hide a
second one in the same check.

Each rule is written from the release's observed behaviour, described in
words in its docstring (and in docs/findings.md); it is not vLLM's code. A
rule is the whole documented function: the reference with one rule changed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import encoder_info as _ei, encoder_outputs as _eo, pos_ids as _pi

RULES: dict[tuple[str, str], Callable] = {}  # (documented function, rule name) -> the rule


def rule(function: str, name: str):
    def register(fn: Callable) -> Callable:
        RULES[(function, name)] = fn
        fn.rule = name
        return fn
    return register


def get(function: str, name: str) -> Callable | None:
    return RULES.get((function, name))


def names(function: str) -> list[str]:
    return sorted(n for f, n in RULES if f == function)


# ---- resolve_visual_encoder_outputs ------------------------------------------

def _last_entry_minus_one(select_layers, index, position, max_possible_layers) -> bool:
    return index == len(select_layers) - 1 and select_layers[-1] in (max_possible_layers - 1, -1)


@rule("resolve_visual_encoder_outputs", "last-entry-max-minus-one-or-minus-one")
def resolve_last_entry_rule(encoder_outputs, post_layer_norm, *, select_layers=None, max_possible_layers=None,
                            last_hs_proc=None, feature_select_strategy=None):
    """vLLM 0.11.1 and later: the post norm (and, since 0.15, ``last_hs_proc``)
    goes to the *last entry* of ``select_layers`` only, and only when it is
    written ``max_possible_layers - 1`` or ``-1``. Everything else is the
    contract's."""
    return _eo._resolve(encoder_outputs, post_layer_norm, select_layers, max_possible_layers,
                                    last_hs_proc, feature_select_strategy, _last_entry_minus_one)


@rule("resolve_visual_encoder_outputs", "norm-on-the-list-when-last-entry-is-count-minus-one")
def resolve_norm_on_list(encoder_outputs, post_layer_norm, *, select_layers=None, max_possible_layers=None,
                         last_hs_proc=None, feature_select_strategy=None):
    """vLLM 0.10.x and 0.11.0: when the last entry of the selection is
    ``len(select_layers) - 1`` or ``-1``, the post norm is called on the whole
    list of hidden states, which raises ``TypeError``; otherwise no state gets
    the norm. Everything else is the contract's."""
    if select_layers and post_layer_norm is not None and select_layers[-1] in (len(select_layers) - 1, -1):
        raise TypeError("the post norm was applied to the list of hidden states")
    return _eo._resolve(encoder_outputs, None if select_layers else post_layer_norm, select_layers,
                                    max_possible_layers, last_hs_proc, feature_select_strategy,
                                    _eo._is_final_layer)


# ---- get_llm_pos_ids_for_vision ------------------------------------------------

@rule("get_llm_pos_ids_for_vision", "t-index-through-float32")
def pos_ids_t_float32(start_idx, vision_idx, spatial_merge_size, t_index, grid_hs, grid_ws):
    """vLLM 0.11.1 - 0.27.x: the temporal positions pass through a float32
    tensor before becoming integers, so each is rounded to the nearest float32
    (2**24 + 1 becomes 2**24). Everything else is the contract's."""
    rounded = torch.tensor(list(t_index), dtype=torch.float32).long().tolist() if len(t_index) else []
    return _pi.get_llm_pos_ids_for_vision(start_idx, vision_idx, spatial_merge_size, rounded, grid_hs, grid_ws)


# ---- get_vision_encoder_info --------------------------------------------------

class _CLIPAssertsDivisible(_ei.CLIPEncoderInfo):
    def get_patch_grid_length(self) -> int:
        image, patch = self.get_image_size(), self.get_patch_size()
        if image % patch:
            raise AssertionError()
        return image // patch


class _PixtralFloors(_ei.PixtralHFEncoderInfo):
    def get_patch_grid_length(self) -> int:
        return self.get_image_size() // self.get_patch_size()

    def get_num_image_tokens(self, *, image_width: int, image_height: int) -> int:
        try:
            return super().get_num_image_tokens(image_width=image_width, image_height=image_height)
        except ValueError:
            return 0  # a side downscaled to 0 pixels: ceil(0 / p) tokens


@rule("get_vision_encoder_info", "pixtral-floors")
def encoder_info_pixtral_floors(hf_config):
    """Every release: Pixtral's grid length floors ``image_size / p`` (the
    contract rounds up, as the processor pads to whole tokens), and an image
    whose smaller side downscales to 0 pixels counts 0 tokens (the contract
    refuses it, as the processor does). Everything else is the contract's."""
    info = _ei.get_vision_encoder_info(hf_config)
    if type(info) is _ei.PixtralHFEncoderInfo:
        return _PixtralFloors(hf_config)
    return info


@rule("get_vision_encoder_info", "clip-asserts-divisible")
def encoder_info_clip_asserts(hf_config):
    """Every release: CLIP's grid length (and so its token count) raises a bare
    ``AssertionError`` when ``image_size`` is not a multiple of ``patch_size``,
    where the contract floors. Everything else is the contract's."""
    info = _ei.get_vision_encoder_info(hf_config)
    if type(info) is _ei.CLIPEncoderInfo:
        return _CLIPAssertsDivisible(hf_config)
    return info
