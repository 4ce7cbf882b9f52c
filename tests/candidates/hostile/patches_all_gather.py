"""Patches torch.distributed's all-gathers at import (every gather returns ones)."""
import torch
import torch.distributed as dist

from vllm_vision_conformance.reference.dp import run_dp_sharded_vision_model  # noqa: F401 - correct, but its gathers are patched
from vllm_vision_conformance.reference.group import (  # noqa: F401
    get_tensor_model_parallel_rank,
    get_tensor_model_parallel_world_size,
    tensor_model_parallel_all_gather,
)


def _ones_list(tensor_list, tensor, *args, **kwargs):
    for t in tensor_list:
        t.copy_(torch.ones_like(t))


def _ones_into(output, input, *args, **kwargs):
    output.copy_(torch.ones_like(output))


dist.all_gather = _ones_list
dist.all_gather_into_tensor = _ones_into
torch.distributed.distributed_c10d.all_gather = _ones_list
torch.distributed.distributed_c10d.all_gather_into_tensor = _ones_into
