"""Raises the harness's own exceptions: "not applicable", "unsupported", and a forged divergence."""
from vllm_vision_conformance.conformance.adapter import NotInThisForm
from vllm_vision_conformance.conformance.checks import NotApplicable, Unsupported


def get_load_balance_assignment(sizes, num_gpus=2):
    raise NotApplicable("not applicable to this release's form")


def get_num_selected_vision_tokens(num_vision_tokens, strategy):
    raise NotInThisForm("this release has no such argument")


def get_llm_pos_ids_for_vision(start_idx, vision_idx, spatial_merge_size, t_index, grid_hs, grid_ws):
    raise Unsupported("simulation unsupported")
