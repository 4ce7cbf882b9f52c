"""Raises control flow, one kind per function: GeneratorExit, pytest's xfail and
fail, and two of the harness's own exceptions (a forged divergence and a harness error)."""
import pytest

from vllm_vision_conformance.conformance.checks import Divergence, HarnessError


def get_load_balance_assignment(sizes, num_gpus=2):
    raise GeneratorExit


def get_num_selected_vision_tokens(num_vision_tokens, strategy):
    pytest.xfail("known to fail, honestly")


def get_llm_pos_ids_for_vision(start_idx, vision_idx, spatial_merge_size, t_index, grid_hs, grid_ws):
    pytest.fail("failing on purpose")


def _get_vision_feature_selector(strategy):
    raise Divergence("forged: it all conforms")


def resolve_visual_encoder_outputs(encoder_outputs, post_layer_norm, *, select_layers=None, max_possible_layers=None,
                                   feature_select_strategy=None):
    raise HarnessError("forged: the harness broke")
