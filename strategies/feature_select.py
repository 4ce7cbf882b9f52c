"""Strategies for feature-select strategies and the features they apply to
(``_get_vision_feature_selector``, ``get_num_selected_vision_tokens``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

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


def named_strategies() -> st.SearchStrategy[str]:
    """One of ``"class"``, ``"default"``, ``"full"``."""
    return st.sampled_from(NAMED)


def callable_strategies() -> st.SearchStrategy[SliceStrategy]:
    """Callable strategies that keep a (possibly empty) slice of the tokens."""
    bound = st.none() | st.integers(-6, 6)
    return st.builds(SliceStrategy, bound, bound, st.none() | st.integers(1, 3))


def feature_select_strategies(include_callables: bool = True) -> st.SearchStrategy:
    """Named strategies, and callables when ``include_callables``."""
    return named_strategies() | callable_strategies() if include_callables else named_strategies()


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
