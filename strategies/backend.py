"""Strategies for ``get_vit_attn_backend``: head sizes, dtypes and backend names.

Platform facts are drawn inputs, never probed from the machine here.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

BACKEND_NAMES = ("FLASH_ATTN", "TRITON_ATTN", "TORCH_SDPA", "FLASHINFER", "ROCM_AITER_FA", "XFORMERS")


def head_sizes() -> st.SearchStrategy[int]:
    """Head sizes: the common ones (16, 40, 64, 72, 80, 128, 256, 320) and any up to 512."""
    return st.sampled_from([16, 32, 40, 64, 72, 80, 96, 128, 256, 320]) | st.integers(1, 512)


def attention_dtypes() -> st.SearchStrategy[torch.dtype]:
    return st.sampled_from([torch.float16, torch.bfloat16, torch.float32])


def backend_names() -> st.SearchStrategy[str]:
    """Backend names some vLLM release knows for vision attention."""
    return st.sampled_from(BACKEND_NAMES)


@st.composite
def backend_queries(draw, override: bool = False) -> dict:
    return {
        "head_size": draw(head_sizes()),
        "dtype": draw(attention_dtypes()),
        "attn_backend_override": draw(backend_names()) if override else None,
    }
