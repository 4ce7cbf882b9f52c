"""Strategies for feature-select strategies and the features they apply to
(``_get_vision_feature_selector``, ``get_num_selected_vision_tokens``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import event, strategies as st

from ._budget import MAX_ELEMENTS

NAMED = ("class", "default", "full")


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
    on the batch size."""
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
    batch into the tokens among them when ``include_folds``)."""
    if not include_callables:
        return named_strategies()
    return named_strategies() | callable_strategies(include_folds)


def invalid_strategies() -> st.SearchStrategy:
    """Values that are no strategy: other strings (case and spelling variants), None, numbers."""
    return st.sampled_from(["cls", "CLASS", "Default", "patch", "", "full ", None, 0, 1.5])


def token_counts(min_value: int = 1) -> st.SearchStrategy[int]:
    """Token counts of a feature tensor, ``min_value`` (default 1: one class token) up."""
    return st.integers(min_value, 600)


@st.composite
def vision_features(draw, min_tokens: int = 1, max_tokens: int = 40) -> torch.Tensor:
    """A ``[B, L, D]`` tensor whose every element is distinct, so any wrong slice shows."""
    batch = draw(st.integers(1, 3))
    dim = draw(st.integers(1, 8))
    cap = max(min_tokens, min(max_tokens, MAX_ELEMENTS // (batch * dim)))
    tokens = draw(st.integers(min_tokens, cap))
    dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.bfloat16, torch.int64]))
    offset = draw(st.integers(-100, 100))
    return (torch.arange(batch * tokens * dim) + offset).reshape(batch, tokens, dim).to(dtype)
