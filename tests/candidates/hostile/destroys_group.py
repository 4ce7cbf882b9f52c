"""Returns the right result, and destroys the caller's process group on the way."""
import torch.distributed as dist

from vllm_vision_conformance.reference.dp import run_dp_sharded_vision_model as _right
from vllm_vision_conformance.reference.group import (  # noqa: F401 - the three names the harness binds to a group
    get_tensor_model_parallel_rank,
    get_tensor_model_parallel_world_size,
    tensor_model_parallel_all_gather,
)


def run_dp_sharded_vision_model(image_input, vision_model):
    out = _right(image_input, vision_model)
    if dist.is_initialized():
        dist.destroy_process_group()
    return out
