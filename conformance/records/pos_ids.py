"""Records of get_llm_pos_ids_for_vision (reference/pos_ids.py, strategies/pos_ids.py)."""

from __future__ import annotations

import torch

from ...strategies import pos_ids as s_pos
from ..checks import FunctionSpec, agrees, returns


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

RECORDS = [POS_IDS]
