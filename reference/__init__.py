"""A clean reference implementation of vLLM's documented vision helpers.

Written from the documented contract (see each docstring), depending on torch
and transformers' config classes only, never on vLLM.
"""

from .backend import get_vit_attn_backend
from .dp import run_dp_sharded_mrope_vision_model, run_dp_sharded_vision_model
from .encoder_info import get_vision_encoder_info
from .encoder_outputs import resolve_visual_encoder_outputs
from .feature_select import (
    VisionFeatureSelectStrategy,
    VisionFeatureSelectStrategyStr,
    _get_vision_feature_selector,
    get_num_selected_vision_tokens,
)
from .load_balance import get_load_balance_assignment
from .pos_ids import get_llm_pos_ids_for_vision

from ..documented import NAMES

# Exactly the documented names, listed once (vllm_vision_conformance/documented.py).
__all__ = list(NAMES)
