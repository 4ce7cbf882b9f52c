"""Which attention kernel a vision encoder runs, on the platform at hand.

The platform facts come from :func:`current_platform_facts` (drawn facts can
be installed with :func:`use_platform`); the reference never probes vLLM.
This first table covers the platforms without a GPU kernel (a CPU, or a
platform vLLM does not recognise): only ``TORCH_SDPA`` is supported there.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

import torch

# Every backend name any supported vLLM release knows for vision attention.
KNOWN_BACKENDS = (
    "FLASH_ATTN",
    "TRITON_ATTN",
    "TORCH_SDPA",
    "FLASHINFER",
    "ROCM_AITER_FA",
    "XFORMERS",
)


@dataclasses.dataclass(frozen=True)
class PlatformFacts:
    """What backend selection may depend on."""

    kind: str  # "cpu", "unspecified", "cuda", "rocm", "xpu", ...
    supported_vit_backends: tuple[str, ...]
    default_backend: str


CPU_FACTS = PlatformFacts("cpu", ("TORCH_SDPA",), "TORCH_SDPA")

_installed: list[PlatformFacts] = []


def current_platform_facts() -> PlatformFacts:
    """The installed facts, else this machine's (a machine without CUDA is a CPU)."""
    if _installed:
        return _installed[-1]
    if torch.cuda.is_available():
        raise NotImplementedError(
            "the reference's GPU decision table is not written yet (backend issue)"
        )
    return CPU_FACTS


@contextlib.contextmanager
def use_platform(facts: PlatformFacts) -> Iterator[PlatformFacts]:
    _installed.append(facts)
    try:
        yield facts
    finally:
        _installed.pop()


def _name(backend: object) -> str:
    return backend if isinstance(backend, str) else getattr(backend, "name", repr(backend))


def get_vit_attn_backend(
    head_size: int,
    dtype: torch.dtype,
    *,
    attn_backend_override: object | None = None,
) -> str:
    """The name of the attention backend for a ViT with ``head_size`` and ``dtype``.

    Contract: without an override, the platform's default vision backend,
    which supports ``head_size`` and ``dtype``. An override (a backend name or
    an enum member with that ``.name``) is returned as given if the platform
    lists it for vision attention; an unknown or unsupported one raises
    ``ValueError`` naming the backends accepted (never an ``AssertionError``,
    which ``python -O`` would strip). Environment variables such as
    ``VLLM_ATTENTION_BACKEND`` select the decoder's backend and do not change
    this answer.
    """
    facts = current_platform_facts()
    if attn_backend_override is None:
        return facts.default_backend
    name = _name(attn_backend_override)
    if name not in facts.supported_vit_backends:
        raise ValueError(
            f"attention backend {name!r} is not supported for vision attention on "
            f"{facts.kind}; accepted: {list(facts.supported_vit_backends)}"
        )
    return name
