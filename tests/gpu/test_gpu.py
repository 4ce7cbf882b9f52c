"""GPU-marked checks of the data-parallel helpers (skipped without CUDA).

On a CUDA machine: NCCL groups over every GPU, with tensors on the GPU, so the
device of the empty-rank placeholder and of the padding matters; on one GPU
the world-size-1 NCCL case. Run with ``pytest tests/gpu/test_gpu.py`` on the
device machine; the output is recorded in docs/distributed.md.
"""

import math

import pytest
import torch

from vllm_vision_conformance.conformance import rankpool
from vllm_vision_conformance.strategies.dp import ModelSpec


def _cases(world):
    # more images than ranks, uneven sizes, and (for world >= 2) ranks without images
    yield [[1, 4, 8], [1, 2, 2]]
    yield [[1, 2, 2]] * (world + 1)
    yield [[2, 2, 4]]
    yield []


@pytest.fixture(scope="module")
def gpu_targets(pool_targets):
    return list(pool_targets)


def _run_all(pool, target, world, device):
    spec = ModelSpec("rope_3d", 2, 3, (2, 2), torch.float32, seed=5)
    for grids in _cases(world):
        pixels = (torch.arange(sum(math.prod(g) for g in grids) * 2) % 5).reshape(-1, 2).float()
        outcomes = pool.run({"target": target, "function": "run_dp_sharded_mrope_vision_model", "model": spec,
                             "args": ["<model>", pixels, grids], "kwargs": {"rope_type": "rope_3d"},
                             "device": device})
        model, start, want = spec.build(), 0, []
        for g in grids:
            n = math.prod(g)
            want.append(model(pixels[start:start + n], [g]))
            start += n
        for o in outcomes:
            assert not o.raised, f"{target}, grids {grids}, rank {o.rank}: {o.error}"
            value = o.decoded().value
            assert len(value) == len(grids)
            for a, b in zip(value, want):
                assert torch.allclose(a.cpu(), b, rtol=1e-5, atol=1e-5), f"{target}, grids {grids}, rank {o.rank}"
            assert all(m[2] == "cuda:0" or m[2].startswith("cuda") for m in o.gathers), o.gathers


def _check_group(targets, world, backend):
    pool = rankpool.RankPool(world, backend=backend, start_method="spawn", timeout=120)
    try:
        pool.start()
        for target in targets:
            _run_all(pool, target, world, "cuda")
    finally:
        pool.close()


@pytest.mark.gpu
def test_nccl_group_over_every_gpu(gpu_targets):
    _check_group(gpu_targets, torch.cuda.device_count(), "nccl")


@pytest.mark.gpus(2)
def test_nccl_two_gpus_with_ranks_without_images(gpu_targets):
    _check_group(gpu_targets, 2, "nccl")


@pytest.mark.gpu
def test_gloo_group_with_cuda_tensors_where_the_backend_allows(gpu_targets):
    """gloo with CUDA tensors: vLLM's all-gather on a gloo group may refuse CUDA
    tensors; a refusal is reported as such, a wrong result fails."""
    _check_group(gpu_targets, 1, "gloo")
