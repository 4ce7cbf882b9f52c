"""M-RoPE position ids of one image or video in the language model's sequence."""

from __future__ import annotations

import torch


def get_llm_pos_ids_for_vision(
    start_idx: int,
    vision_idx: int,
    spatial_merge_size: int,
    t_index: list[int],
    grid_hs: torch.Tensor,
    grid_ws: torch.Tensor,
) -> torch.Tensor:
    """The ``[3, T * H' * W']`` int64 position ids of vision item ``vision_idx``.

    With ``H' = grid_hs[vision_idx] // spatial_merge_size`` and
    ``W' = grid_ws[vision_idx] // spatial_merge_size`` (floor division), the
    tokens are enumerated frame by frame (``t_index`` gives each frame's
    temporal position, ``T = len(t_index)``), then row by row, then column by
    column; token ``k`` at (frame ``f``, row ``r``, column ``c``) has ids
    ``(t_index[f], r, c)`` plus ``start_idx`` in all three rows. Integers are
    exact (no float round trip). The result lives on ``grid_hs``'s device.

    Preconditions: ``spatial_merge_size >= 1`` (else ``ValueError``),
    ``0 <= vision_idx < len(grid_hs)`` (else ``IndexError``).
    """
    if spatial_merge_size < 1:
        raise ValueError(f"spatial_merge_size={spatial_merge_size} must be >= 1")
    if not 0 <= vision_idx < len(grid_hs):
        raise IndexError(f"vision_idx={vision_idx} outside 0..{len(grid_hs) - 1}")
    device = grid_hs.device
    h = int(grid_hs[vision_idx]) // spatial_merge_size
    w = int(grid_ws[vision_idx]) // spatial_merge_size
    t = torch.tensor(list(t_index), dtype=torch.int64, device=device).reshape(-1)
    frames = t.numel()
    t_ids = t.repeat_interleave(h * w)
    h_ids = torch.arange(h, device=device).repeat_interleave(w).repeat(frames)
    w_ids = torch.arange(w, device=device).repeat(h * frames)
    return torch.stack([t_ids, h_ids, w_ids]) + start_idx
