"""Strategies for feature-select strategies and the features they apply to
(``_get_vision_feature_selector``, ``get_num_selected_vision_tokens``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import event, strategies as st

from ._budget import MAX_ELEMENTS
from ._validate import check_bool, check_int, check_order

NAMED = ("class", "default", "full")
MAX_TOKEN_COUNT = 600  # the largest count token_counts draws (CLIP-L/336 has 577)


@dataclass(frozen=True)
class SliceStrategy:
    """A callable feature-select strategy: ``feats[:, start:stop:step, :]``."""

    start: int | None
    stop: int | None
    step: int | None

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        return feats[:, self.start : self.stop : self.step, :]


@dataclass(frozen=True)
class FoldStrategy:
    """A callable feature-select strategy whose kept count depends on the batch:
    the batch folded into the tokens, ``feats.reshape(1, B * L, D)``, then every
    ``step``-th token. On the documented dummy ``[1, L, D]`` it keeps
    ``ceil(L / step)``; on any other batch size, another count."""

    step: int

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        return feats.reshape(1, -1, feats.shape[-1])[:, :: self.step, :]


def named_strategies() -> st.SearchStrategy[str]:
    """One of ``"class"``, ``"default"``, ``"full"``."""
    return st.sampled_from(NAMED)


def callable_strategies(include_folds: bool = True) -> st.SearchStrategy[SliceStrategy | FoldStrategy]:
    """Callable strategies: a (possibly empty) slice of the tokens, or (when
    ``include_folds``) the batch folded into the tokens, a count that depends
    on the batch size. ``include_folds``: True or False."""
    check_bool("callable_strategies", "include_folds", include_folds)
    bound = st.none() | st.integers(-6, 6)
    slices = st.builds(SliceStrategy, bound, bound, st.none() | st.integers(1, 3))
    return slices | _folds() if include_folds else slices


def _folds() -> st.SearchStrategy[FoldStrategy]:
    def drawn(fold: FoldStrategy) -> FoldStrategy:
        event("feature select: a callable whose count depends on the batch size")
        return fold
    return st.builds(FoldStrategy, st.integers(1, 3)).map(drawn)


def feature_select_strategies(include_callables: bool = True, include_folds: bool = True) -> st.SearchStrategy:
    """Named strategies, and callables when ``include_callables`` (folds of the
    batch into the tokens among them when ``include_folds``). Both arguments:
    True or False."""
    check_bool("feature_select_strategies", "include_callables", include_callables)
    check_bool("feature_select_strategies", "include_folds", include_folds)
    if not include_callables:
        return named_strategies()
    return named_strategies() | callable_strategies(include_folds)


def invalid_strategies() -> st.SearchStrategy:
    """Values that are no strategy: other strings (case and spelling variants), None, numbers."""
    return st.sampled_from(["cls", "CLASS", "Default", "patch", "", "full ", None, 0, 1.5])


def token_counts(min_value: int = 1) -> st.SearchStrategy[int]:
    """Token counts of a feature tensor, ``min_value`` (default 1: one class
    token; 0 for the empty feature) up to ``MAX_TOKEN_COUNT`` (600).
    ``min_value``: an int from 0 to 600."""
    check_int("token_counts", "min_value", min_value, 0, MAX_TOKEN_COUNT)
    return st.integers(min_value, MAX_TOKEN_COUNT)


def vision_features(min_tokens: int = 1, max_tokens: int = 40) -> st.SearchStrategy[torch.Tensor]:
    """A ``[B, L, D]`` tensor whose every element is distinct, so any wrong
    slice shows: ``B`` 1-3, ``D`` 1-8, ``L`` from ``min_tokens`` to
    ``max_tokens`` within the element cap (``B * L * D <= MAX_ELEMENTS``: a
    large ``L`` comes with a smaller batch and dim); float32, float64,
    bfloat16 or int64.

    ``min_tokens``: an int from 0 (features without a token) to
    ``MAX_ELEMENTS``; ``max_tokens``: an int from ``min_tokens`` to
    ``MAX_ELEMENTS``.
    """
    where = "vision_features"
    check_int(where, "min_tokens", min_tokens, 0, MAX_ELEMENTS, cap="MAX_ELEMENTS")
    check_int(where, "max_tokens", max_tokens, 0, MAX_ELEMENTS, cap="MAX_ELEMENTS")
    check_order(where, "min_tokens", min_tokens, "max_tokens", max_tokens)
    return _vision_features(min_tokens, max_tokens)


@st.composite
def _vision_features(draw, min_tokens: int, max_tokens: int) -> torch.Tensor:
    # up to min_tokens = MAX_ELEMENTS // 24 (170) the bounds are 3 and 8, as they always were
    fits = MAX_ELEMENTS // max(1, min_tokens)
    batch = draw(st.integers(1, min(3, fits)))
    dim = draw(st.integers(1, min(8, fits // batch)))
    cap = max(min_tokens, min(max_tokens, MAX_ELEMENTS // (batch * dim)))
    tokens = draw(st.integers(min_tokens, cap))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.bfloat16, torch.int64]))
    offset = draw(st.integers(-100, 100))
    return (torch.arange(batch * tokens * dim) + offset).reshape(batch, tokens, dim).to(dtype)
