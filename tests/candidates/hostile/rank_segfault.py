"""Rank 1 of a real group dies of SIGSEGV; in the simulated group, the process does."""
import ctypes

from vllm_vision_conformance.reference.dp import run_dp_sharded_vision_model as _right
from vllm_vision_conformance.reference.group import (  # noqa: F401
    get_tensor_model_parallel_rank,
    get_tensor_model_parallel_world_size,
    tensor_model_parallel_all_gather,
)


def run_dp_sharded_vision_model(image_input, vision_model):
    if get_tensor_model_parallel_rank() == 1:
        ctypes.string_at(0)
    return _right(image_input, vision_model)
