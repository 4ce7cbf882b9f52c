"""Strategies for ``get_llm_pos_ids_for_vision``: ``t_index`` lists and grid tensors."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from ._budget import MAX_ELEMENTS, MAX_IMAGES
from ._validate import check_int

MAX_FRAMES = MAX_ELEMENTS // 3  # the ids are [3, frames * tokens]: one token a frame fills the cap


def t_indices(max_frames: int = 6) -> st.SearchStrategy[list[int]]:
    """Temporal positions of each frame: small, increasing or repeated, and
    occasionally large (above 2**24, where a float32 round trip loses digits).

    ``max_frames``: an int from 1 (a single image) to ``MAX_FRAMES``
    (``MAX_ELEMENTS // 3``); the small lists have 1 to ``max_frames``
    entries, the large ones 1 or 2.
    """
    check_int("t_indices", "max_frames", max_frames, 1, MAX_FRAMES, cap="MAX_ELEMENTS // 3")
    small = st.lists(st.integers(0, 64), min_size=1, max_size=max_frames)
    large = st.lists(st.integers(2**24, 2**40), min_size=1, max_size=2)
    return small | large


@st.composite
def pos_id_inputs(draw) -> dict:
    """Keyword arguments for ``get_llm_pos_ids_for_vision``: 1 to
    ``MAX_IMAGES`` images, merge size 1-4, grid sides from 0 (no token) and
    not always multiples of the merge size, the ids of the chosen image at
    most ``MAX_ELEMENTS``. No arguments."""
    merge = draw(st.integers(1, 4))
    t_index = draw(t_indices())
    count = draw(st.integers(1, MAX_IMAGES))
    budget = max(1, MAX_ELEMENTS // (3 * len(t_index)))
    side = st.integers(0, max(1, int(budget**0.5)) * merge)
    grid_hs = torch.tensor(draw(st.lists(side, min_size=count, max_size=count)), dtype=torch.int64)
    grid_ws = torch.tensor(draw(st.lists(side, min_size=count, max_size=count)), dtype=torch.int64)
    return {
        "start_idx": draw(st.integers(0, 10_000)),
        "vision_idx": draw(st.integers(0, count - 1)),
        "spatial_merge_size": merge,
        "t_index": t_index,
        "grid_hs": grid_hs,
        "grid_ws": grid_ws,
    }
