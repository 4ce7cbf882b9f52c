"""Strategies for ``get_vit_attn_backend``: head sizes, dtypes and backend names.

Platform facts are drawn inputs, never probed from the machine here.
"""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import strategies as st

from ._validate import check_bool, check_one_of, check_strategy

BACKEND_NAMES = ("FLASH_ATTN", "TRITON_ATTN", "TORCH_SDPA", "FLASHINFER", "ROCM_AITER_FA", "XFORMERS")


def head_sizes() -> st.SearchStrategy[int]:
    """Head sizes: the common ones (16, 32, 40, 64, 72, 80, 96, 128, 256, 320)
    and any from 1 up to 512. No arguments."""
    return st.sampled_from([16, 32, 40, 64, 72, 80, 96, 128, 256, 320]) | st.integers(1, 512)


def attention_dtypes() -> st.SearchStrategy[torch.dtype]:
    """float16, bfloat16 or float32. No arguments."""
    return st.sampled_from([torch.float16, torch.bfloat16, torch.float32])


def backend_names() -> st.SearchStrategy[str]:
    """Backend names some vLLM release knows for vision attention (``BACKEND_NAMES``). No arguments."""
    return st.sampled_from(BACKEND_NAMES)


def backend_queries(override: bool = False) -> st.SearchStrategy[dict]:
    """``head_size``, ``dtype`` and ``attn_backend_override`` (a backend name
    when ``override``, else None) for the machine's own platform.
    ``override``: True or False."""
    check_bool("backend_queries", "override", override)
    return _backend_queries(override)


@st.composite
def _backend_queries(draw, override: bool) -> dict:
    return {
        "head_size": draw(head_sizes()),
        "dtype": draw(attention_dtypes()),
        "attn_backend_override": draw(backend_names()) if override else None,
    }


# ---- platform facts: drawn, never probed --------------------------------------

from ..reference.backend import PlatformFacts  # noqa: E402

# The acceptance grid: capabilities (None: unknown), dtypes, head sizes.
GRID_CAPABILITIES = ((7, 0), (7, 5), (8, 0), (8, 6), (9, 0), (10, 0), (12, 0), None)
GRID_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
GRID_HEAD_SIZES = (16, 40, 64, 72, 80, 128, 256, 320)
ROCM_ARCHS = ("gfx90a", "gfx942", "gfx950", "gfx1100", "gfx1101", "gfx1200", "gfx1201")


def capabilities(known: bool | None = None) -> st.SearchStrategy:
    """CUDA capabilities of real parts, plus unknown (None) and any (major, minor).

    ``known``: None draws both, True only known capabilities, False only unknown (None).
    """
    check_bool("capabilities", "known", known, allow_none=True)
    if known is False:
        return st.none()
    real = st.sampled_from(tuple(c for c in GRID_CAPABILITIES if c) + ((12, 1), (10, 3))) | st.tuples(
        st.integers(5, 13), st.integers(0, 9))
    return real if known else real | st.none()


def cuda_facts(all_kernels: bool = False, known_capability: bool | None = None) -> st.SearchStrategy[PlatformFacts]:
    """A CUDA device: capability, FA4 or not, which vLLM kernel backends import
    (FLASHINFER never: it is not installed here and cannot be faked honestly).

    ``all_kernels`` (True or False): every kernel imports. ``known_capability``:
    None, True or False, as :func:`capabilities` takes it.
    """
    check_bool("cuda_facts", "all_kernels", all_kernels)
    check_bool("cuda_facts", "known_capability", known_capability, allow_none=True)
    kernels = st.just(frozenset({"FLASH_ATTN", "TRITON_ATTN", "XFORMERS"})) if all_kernels else st.frozensets(
        st.sampled_from(["FLASH_ATTN", "TRITON_ATTN", "XFORMERS"]))
    return st.builds(PlatformFacts, kind=st.just("cuda"), capability=capabilities(known_capability), kernels=kernels,
                     fa4=st.booleans(),
                     override_source=st.sampled_from(["argument", "multimodal_config"]))


def rocm_facts() -> st.SearchStrategy[PlatformFacts]:
    """A ROCm device: arch, flash_attn installed, Triton-AMD enabled, AITER MHA on. No arguments."""
    return st.builds(PlatformFacts, kind=st.just("rocm"), arch=st.sampled_from(ROCM_ARCHS),
                     flash_attn_pkg=st.booleans(), triton_amd=st.booleans(), aiter=st.booleans(),
                     override_source=st.sampled_from(["argument", "multimodal_config"]))


def xpu_facts() -> st.SearchStrategy[PlatformFacts]:
    """An XPU device. No arguments."""
    return st.builds(PlatformFacts, kind=st.just("xpu"),
                     override_source=st.sampled_from(["argument", "multimodal_config"]))


def cpu_facts() -> st.SearchStrategy[PlatformFacts]:
    """A CPU (or unspecified) platform. No arguments."""
    return st.builds(PlatformFacts, kind=st.sampled_from(["cpu", "unspecified"]),
                     override_source=st.sampled_from(["argument", "multimodal_config"]))


def tpu_facts() -> st.SearchStrategy[PlatformFacts]:
    """A TPU (vLLM's in-tree TPU platform class, where a release has one). No arguments."""
    return st.builds(PlatformFacts, kind=st.just("tpu"),
                     override_source=st.sampled_from(["argument", "multimodal_config"]))


def platform_facts() -> st.SearchStrategy[PlatformFacts]:
    """Any of the four platforms. No arguments."""
    return cuda_facts() | rocm_facts() | xpu_facts() | cpu_facts()


def simulated_queries(facts: st.SearchStrategy[PlatformFacts],
                      override: bool | str | None = None) -> st.SearchStrategy[dict]:
    """{"facts", "head_size", "dtype", "attn_backend_override"}; ``facts``: a
    strategy of :class:`PlatformFacts`; ``override`` None draws with or
    without one, True always one (a backend name), False none;
    ``"listed"`` / ``"unlisted"`` draw one the
    platform lists for vision attention / does not list by the contract
    (resolved when the check runs: the value is then an :class:`OverridePick`)."""
    check_strategy("simulated_queries", "facts", facts)
    check_one_of("simulated_queries", "override", override, OVERRIDES)
    return _simulated_queries(facts, override)


OVERRIDES = (None, True, False, "listed", "unlisted")  # what simulated_queries' override accepts


@st.composite
def _simulated_queries(draw, facts: st.SearchStrategy[PlatformFacts], override: bool | str | None) -> dict:
    with_override = draw(st.booleans()) if override is None else bool(override)
    if override in ("listed", "unlisted"):
        chosen = OverridePick(override, draw(st.integers(0, 63)))
    else:
        chosen = draw(backend_names()) if with_override else None
    return {
        "facts": draw(facts),
        "head_size": draw(st.sampled_from(GRID_HEAD_SIZES) | head_sizes()),
        "dtype": draw(attention_dtypes()),
        "attn_backend_override": chosen,
    }


@dataclasses.dataclass(frozen=True)
class OverridePick:
    """An override to be picked among the backends the platform lists (or not)."""

    which: str  # "listed" | "unlisted"
    index: int

    def resolve(self, listed: tuple[str, ...]) -> str:
        pool = listed if self.which == "listed" else tuple(n for n in BACKEND_NAMES if n not in listed)
        return pool[self.index % len(pool)]


def grid() -> list[tuple]:
    """Every (capability, dtype, head size) of the acceptance grid."""
    return [(cc, dt, h) for cc in GRID_CAPABILITIES for dt in GRID_DTYPES for h in GRID_HEAD_SIZES]
