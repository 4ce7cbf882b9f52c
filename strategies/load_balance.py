"""Strategies for ``get_load_balance_assignment``: image size lists and rank counts."""

from __future__ import annotations

from hypothesis import strategies as st

from ._budget import MAX_IMAGES, MAX_RANKS


def image_size_lists(max_images: int = 3 * MAX_IMAGES) -> st.SearchStrategy[list[int]]:
    """Image sizes: empty lists, zero sizes, many equal sizes (ties), a wide spread."""
    equal = st.tuples(st.integers(0, 5000), st.integers(1, max_images)).map(lambda p: [p[0]] * p[1])
    spread = st.lists(st.integers(0, 100_000), max_size=max_images)
    few_values = st.lists(st.sampled_from([0, 1, 4, 50, 100, 200, 1000]), max_size=max_images)
    return spread | equal | few_values


def rank_counts(max_ranks: int = MAX_RANKS) -> st.SearchStrategy[int]:
    """Rank counts from 1 (one rank) to ``max_ranks``."""
    return st.integers(1, max_ranks)


@st.composite
def load_balance_inputs(draw) -> dict:
    """Keyword arguments ``sizes``, ``num_gpus``; often more ranks than images."""
    return {"sizes": draw(image_size_lists()), "num_gpus": draw(rank_counts(2 * MAX_RANKS))}
