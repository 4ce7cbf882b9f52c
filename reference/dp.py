"""Running a vision model data-parallel across the tensor-parallel group.

Both functions read the group through the three names imported from
:mod:`reference.group` (world size, rank, all-gather), so they run unchanged
under a simulated group or a real ``torch.distributed`` group. Every rank
returns the same result; the all-gather is the only collective.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from .group import (
    get_tensor_model_parallel_rank,
    get_tensor_model_parallel_world_size,
    tensor_model_parallel_all_gather,
)
from .load_balance import get_load_balance_assignment


def run_dp_sharded_vision_model(
    image_input: torch.Tensor, vision_model: torch.nn.Module
) -> torch.Tensor:
    """Run ``vision_model`` on ``image_input`` split on dim 0 across the group.

    Contract: for a model that maps each row of its input independently
    (``model(x)[i]`` depends on ``x[i]`` only), every rank returns exactly
    ``vision_model(image_input)``: ``image_input.shape[0]`` rows, in the
    original order. Each rank runs the model once, on a contiguous block of
    ``ceil(N / world_size)`` rows (blocks past the end are zero rows), and
    every rank hands the all-gather a tensor of the same shape and dtype.
    """
    world = get_tensor_model_parallel_world_size()
    rank = get_tensor_model_parallel_rank()
    n = image_input.shape[0]
    per_rank = -(-n // world)
    padded = torch.cat(
        [image_input, image_input.new_zeros((per_rank * world - n, *image_input.shape[1:]))]
    )
    local = padded[rank * per_rank : (rank + 1) * per_rank]
    out = vision_model(local).contiguous()
    return tensor_model_parallel_all_gather(out, dim=0)[:n]


def _reduction(vision_model: torch.nn.Module, rope_type: str) -> int:
    if rope_type == "rope_2d":
        kh, kw = vision_model.merge_kernel_size
        return kh * kw
    if rope_type == "rope_3d":
        return vision_model.spatial_merge_size**2
    raise ValueError(f"rope_type={rope_type!r}: accepted 'rope_3d' or 'rope_2d'")


def run_dp_sharded_mrope_vision_model(
    vision_model: torch.nn.Module,
    pixel_values: torch.Tensor,
    grid_thw_list: list[list[int]],
    *,
    rope_type: Literal["rope_3d", "rope_2d"],
) -> tuple[torch.Tensor, ...]:
    """Run an M-RoPE vision model data-parallel, balancing images by size.

    ``pixel_values`` holds every image's patches back to back (image ``i`` has
    ``prod(grid_thw_list[i])`` rows). The model is called as
    ``model(pixels, grids)`` with the grids as a list (``"rope_3d"``, e.g.
    Qwen2.5-VL) or an int64 tensor (``"rope_2d"``, e.g. Kimi-VL) and returns
    ``patches / r`` embeddings per image, where ``r`` is
    ``spatial_merge_size ** 2`` (rope_3d) or the product of
    ``merge_kernel_size`` (rope_2d), floored when an image's patch count is
    not a multiple of ``r`` (vLLM's own tests and its docstring example use
    such grids: ``[1, 50]`` with merge 2 gives 12 tokens); a rope_2d model's output is
    ``[tokens, r, hidden]`` (or a list of such tensors).

    Contract: every rank returns a tuple with one tensor per image, in the
    original order, and for a model that treats images independently, item
    ``i`` equals the model's output for image ``i`` alone, in the model's
    output dtype (whatever the dtype of its parameters or of the pixels, and
    for models without parameters). Images are distributed by
    :func:`get_load_balance_assignment` of the patch counts; each rank runs
    the model at most once, on its own images only; a rank with no images
    does not run the model. Every rank hands the all-gather one tensor of the
    same shape, dtype and device: here float64 rows, led by one row that
    carries the rank's output dtype, so a rank without images learns the
    dtype from its peers in the same collective.

    Precondition: ``rope_type`` is ``"rope_3d"`` or ``"rope_2d"`` (otherwise
    ``ValueError``).
    """
    reduction = _reduction(vision_model, rope_type)
    patches = [math.prod(grid) for grid in grid_thw_list]
    tokens = [p // reduction for p in patches]
    starts = [0]
    for p in patches:
        starts.append(starts[-1] + p)

    world = get_tensor_model_parallel_world_size()
    rank = get_tensor_model_parallel_rank()
    order, counts, _ = get_load_balance_assignment(patches, world)
    first = sum(counts[:rank])
    mine = order[first : first + counts[rank]]

    if rope_type == "rope_2d":
        row_shape = (reduction, vision_model.config.hidden_size)
    else:
        row_shape = (vision_model.out_hidden_size,)

    if mine:
        local_pixels = torch.cat([pixel_values[starts[i] : starts[i + 1]] for i in mine])
        local_grids = [list(grid_thw_list[i]) for i in mine]
        if rope_type == "rope_2d":
            out = vision_model(local_pixels, torch.tensor(local_grids, dtype=torch.int64))
            if isinstance(out, (list, tuple)):
                out = torch.cat(list(out), dim=0)
        else:
            out = vision_model(local_pixels, local_grids)
    else:
        out = None

    per_rank_tokens = [
        sum(tokens[i] for i in order[sum(counts[:g]) : sum(counts[: g + 1])])
        for g in range(world)
    ]
    width = max(per_rank_tokens, default=0)
    device = pixel_values.device
    rows = torch.zeros((width + 1, *row_shape), dtype=torch.float64, device=device)
    if out is not None:
        rows[0].fill_(_DTYPE_CODES.index(out.dtype) + 1)
        rows[1 : 1 + out.shape[0]] = out.to(torch.float64)
    gathered = tensor_model_parallel_all_gather(rows, dim=0)

    codes = [int(gathered[g * (width + 1)].flatten()[0]) if gathered.numel() else 0 for g in range(world)]
    known = [c for c in codes if c]
    dtype = _DTYPE_CODES[known[0] - 1] if known else _empty_dtype(vision_model, pixel_values)
    result: list[torch.Tensor | None] = [None] * len(grid_thw_list)
    for g in range(world):
        offset = g * (width + 1) + 1
        for image in order[sum(counts[:g]) : sum(counts[: g + 1])]:
            result[image] = gathered[offset : offset + tokens[image]].to(dtype)
            offset += tokens[image]
    return tuple(result)  # type: ignore[arg-type]


_DTYPE_CODES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _empty_dtype(vision_model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.dtype:
    """No rank ran the model (no images): nothing is returned, any dtype will do."""
    params = list(vision_model.parameters())
    return params[0].dtype if params else pixel_values.dtype
