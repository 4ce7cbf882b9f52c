"""Data-parallel candidates that misbehave on one rank; the reference's
mrope function (correct) rides along to show the group recovers.

Which fault is chosen by the environment variable VVC_DP_FAULT: "raise"
(rank 1 raises before the collective), "hang" (rank 1 never returns) or
"skip" (rank 1 returns without joining the all-gather).
"""
import os
import time

import torch

from vllm_vision_conformance.reference.dp import run_dp_sharded_mrope_vision_model  # noqa: F401 - correct, to show recovery
from vllm_vision_conformance.reference.group import (  # the three names the harness binds to a group
    get_tensor_model_parallel_rank,
    get_tensor_model_parallel_world_size,
    tensor_model_parallel_all_gather,
)


def run_dp_sharded_vision_model(image_input, vision_model):
    world = get_tensor_model_parallel_world_size()
    rank = get_tensor_model_parallel_rank()
    fault = os.environ.get("VVC_DP_FAULT", "raise")
    if rank == 1:
        if fault == "raise":
            raise RuntimeError("rank 1 fails before the collective")
        if fault == "hang":
            while True:
                time.sleep(0.05)
        if fault == "skip":
            return vision_model(image_input)
    n = image_input.shape[0]
    per = -(-n // world)
    padded = torch.cat([image_input, image_input.new_zeros((per * world - n, *image_input.shape[1:]))])
    out = vision_model(padded[rank * per:(rank + 1) * per]).contiguous()
    return tensor_model_parallel_all_gather(out, dim=0)[:n]
