"""Strategies for ``get_load_balance_assignment``: image size lists and rank counts."""

from __future__ import annotations

from hypothesis import strategies as st

from ._budget import MAX_BALANCE_RANKS, MAX_IMAGES, MAX_RANKS, MAX_SIZES
from ._validate import check_int


def image_size_lists(max_images: int = MAX_SIZES) -> st.SearchStrategy[list[int]]:
    """Image sizes: empty lists, zero sizes, many equal sizes (ties), a wide
    spread; at most ``max_images`` sizes, an int from 1 to ``MAX_SIZES``
    (``3 * MAX_IMAGES``: plain ints, nothing runs on them)."""
    check_int("image_size_lists", "max_images", max_images, 1, MAX_SIZES, cap="MAX_SIZES")
    equal = st.tuples(st.integers(0, 5000), st.integers(1, max_images)).map(lambda p: [p[0]] * p[1])
    spread = st.lists(st.integers(0, 100_000), max_size=max_images)
    few_values = st.lists(st.sampled_from([0, 1, 4, 50, 100, 200, 1000]), max_size=max_images)
    return spread | equal | few_values


def rank_counts(max_ranks: int = MAX_RANKS) -> st.SearchStrategy[int]:
    """Rank counts from 1 (one rank) to ``max_ranks``, an int from 1 to
    ``MAX_BALANCE_RANKS`` (``2 * MAX_RANKS``: the assignment is arithmetic,
    no group is set up)."""
    check_int("rank_counts", "max_ranks", max_ranks, 1, MAX_BALANCE_RANKS, cap="MAX_BALANCE_RANKS")
    return st.integers(1, max_ranks)


@st.composite
def load_balance_inputs(draw) -> dict:
    """Keyword arguments ``sizes``, ``num_gpus`` (1 to ``MAX_BALANCE_RANKS``);
    often more ranks than images. No arguments."""
    return {"sizes": draw(image_size_lists()), "num_gpus": draw(rank_counts(MAX_BALANCE_RANKS))}
