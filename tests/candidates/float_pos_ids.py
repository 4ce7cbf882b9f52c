"""A broken reference: position ids through a float32 round trip (as some
releases did), which loses integers above 2**24."""
import torch

from vllm_vision_conformance.reference import get_llm_pos_ids_for_vision as _exact


def get_llm_pos_ids_for_vision(start_idx, vision_idx, spatial_merge_size, t_index, grid_hs, grid_ws):
    ids = _exact(0, vision_idx, spatial_merge_size, [0] * len(t_index), grid_hs, grid_ws)
    t = torch.tensor(t_index, dtype=torch.float32).long()
    ids[0] = t.repeat_interleave(ids.shape[1] // max(1, len(t_index))) if len(t_index) else ids[0]
    return ids + start_idx
