"""Feature-select strategies: which token positions of a ``[B, L, D]`` feature
tensor a vision encoder hands on to the language model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, TypeAlias, Union

import torch

VisionFeatureSelectStrategyStr = Literal["class", "default", "full"]
"""The named strategies: ``"class"`` keeps the class token (position 0) only,
``"default"`` drops it and keeps every patch token, ``"full"`` keeps all."""

VisionFeatureSelectStrategy: TypeAlias = Union[
    VisionFeatureSelectStrategyStr, Callable[[torch.Tensor], torch.Tensor]
]
"""A named strategy, or any callable mapping ``[B, L, D]`` to ``[B, L', D]``."""

_NAMED = ("class", "default", "full")


def _bad_strategy(strategy: object) -> ValueError:
    return ValueError(
        f"Unexpected feature select strategy: {strategy!r} "
        f"(accepted: one of {_NAMED} or a callable)"
    )


def _get_vision_feature_selector(
    strategy: VisionFeatureSelectStrategy | str,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the function that applies ``strategy`` to features ``[B, L, D]``.

    Contract:
      * a callable strategy is returned unchanged (the same object);
      * ``"class"`` -> ``feats[:, :1, :]``; ``"default"`` -> ``feats[:, 1:, :]``;
        ``"full"`` -> ``feats`` (values, dtype and device unchanged);
      * anything else (another string, ``None``, a number) raises ``ValueError``
        when the selector is requested, not when it is applied.
    """
    if callable(strategy):
        return strategy
    if strategy == "class":
        return lambda feats: feats[:, :1, :]
    if strategy == "default":
        return lambda feats: feats[:, 1:, :]
    if strategy == "full":
        return lambda feats: feats
    raise _bad_strategy(strategy)


def get_num_selected_vision_tokens(
    num_vision_tokens: int,
    strategy: VisionFeatureSelectStrategy | str,
) -> int:
    """How many tokens ``strategy`` keeps out of ``num_vision_tokens``.

    Contract:
      * agrees with the selector: for features with ``num_vision_tokens``
        tokens, the result equals
        ``_get_vision_feature_selector(strategy)(feats).shape[1]``;
      * ``"class"`` -> 1, ``"default"`` -> ``num_vision_tokens - 1``,
        ``"full"`` -> ``num_vision_tokens``; a callable is applied to a
        ``[1, num_vision_tokens, D]`` tensor and its second dimension counted;
      * preconditions: ``num_vision_tokens`` is an int, ``>= 1`` for
        ``"class"`` and ``"default"`` (they presuppose a class token) and
        ``>= 0`` otherwise; violating them raises ``ValueError``, as does an
        unknown strategy.
    """
    if callable(strategy):
        if num_vision_tokens < 0:
            raise ValueError(f"num_vision_tokens={num_vision_tokens} must be >= 0")
        return int(strategy(torch.empty(1, num_vision_tokens, 8)).shape[1])
    if strategy not in _NAMED:
        raise _bad_strategy(strategy)
    floor = 0 if strategy == "full" else 1
    if num_vision_tokens < floor:
        raise ValueError(
            f"num_vision_tokens={num_vision_tokens} must be >= {floor} "
            f"for strategy {strategy!r}"
        )
    return {"class": 1, "default": num_vision_tokens - 1, "full": num_vision_tokens}[
        strategy
    ]
