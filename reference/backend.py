"""Which attention kernel a vision encoder runs, as a decision table over
platform facts.

The answer is a pure function of :class:`PlatformFacts` (the platform kind,
its CUDA capability or ROCm arch, which kernel backends import, where an
override came from) and of the query (head size, dtype, override). The facts
come from :func:`current_platform_facts`: drawn facts installed with
:func:`use_platform`, else this machine (a machine without CUDA is a CPU).
The reference never probes vLLM.

One contract for every release: the current documented behaviour
(``docs/backend.md`` prints the table). No release's own precedence is in
here; where an older release behaves otherwise, that is a recorded departure
(``reference/departures.py``, named by an expectations entry with its reason
and the release that changed it).

1. An override (a name, or an enum member with that ``.name``) is returned
   as given if the platform lists it for vision attention
   (:func:`vision_backends`); anything else raises ``ValueError`` naming the
   accepted backends.
2. Without an override, the platform's precedence (:func:`auto_order`) is
   walked and the first backend that imports and supports the head size,
   the dtype and the device (:func:`kernel_supports`) is chosen;
   ``TORCH_SDPA`` supports everything and ends every order.

Invariants, which hold whatever the precedence: the chosen backend is one the
platform lists; it supports the head size, dtype and capability it is asked
for (an unknown capability supports no backend that requires one); the answer
does not depend on ``VLLM_ATTENTION_BACKEND`` (the decoder's setting) or on
where the override came from (argument or multimodal config).
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
    "PALLAS",
)

HALF = (torch.float16, torch.bfloat16)
CDNA_ARCHS = ("gfx90a", "gfx942", "gfx950")          # ROCm data-centre (gfx9)
RDNA_ARCHS = ("gfx1100", "gfx1101", "gfx1200", "gfx1201")
AITER_ARCHS = ("gfx942", "gfx950")  # ROCm AITER's MHA kernels (CDNA 3 and later)
FA_HEAD_LIMIT, FA4_HEAD_LIMIT = 256, 512  # FLASH_ATTN's largest head size (FA4: FlashAttention 4 usable)


@dataclasses.dataclass(frozen=True, repr=False)
class PlatformFacts:
    """What backend selection may depend on (and two facts it must not)."""

    kind: str  # "cpu", "unspecified", "cuda", "rocm", "xpu", "tpu"  (KINDS)
    capability: tuple[int, int] | None = None  # CUDA compute capability; None: unknown
    arch: str | None = None  # ROCm gcnArchName, e.g. "gfx942"
    # vLLM kernel backends whose module imports here (CUDA / XPU), and on
    # CUDA 0.11 whether xformers imports ("XFORMERS").
    kernels: frozenset = frozenset({"FLASH_ATTN", "TRITON_ATTN", "XFORMERS"})
    fa4: bool = False  # FlashAttention 4 usable: FLASH_ATTN takes head sizes 257-512
    flash_attn_pkg: bool = False  # ROCm: the upstream flash_attn package is installed (implied by triton_amd)
    triton_amd: bool = False  # ROCm RDNA: Triton-AMD kernels present and FLASH_ATTENTION_TRITON_AMD_ENABLE=TRUE
    aiter: bool = False  # ROCm: AITER installed with VLLM_ROCM_USE_AITER=1 and VLLM_ROCM_USE_AITER_MHA=1
    override_source: str = "argument"  # "argument" or "multimodal_config": must not matter

    def __repr__(self) -> str:  # compact: only what differs from the defaults
        fields = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)[1:]
                  if getattr(self, f.name) != f.default]
        fields = [f"kernels={sorted(self.kernels)}" if x.startswith("kernels=") else x for x in fields]
        return f"PlatformFacts({', '.join([repr(self.kind), *fields])})"

    # Kept for readers of the first version of this module.
    @property
    def supported_vit_backends(self) -> tuple[str, ...]:
        return vision_backends(self)

    @property
    def default_backend(self) -> str:
        return _auto(self, 64, torch.float16)


CPU_FACTS = PlatformFacts("cpu")
KINDS = ("cpu", "unspecified", "cuda", "rocm", "xpu", "tpu")


def vision_backends(facts: PlatformFacts) -> tuple[str, ...]:
    """The backends the platform lists for vision attention (overrides it accepts)."""
    return {"cuda": ("FLASH_ATTN", "TRITON_ATTN", "TORCH_SDPA", "FLASHINFER"),
            "rocm": ("FLASH_ATTN", "ROCM_AITER_FA", "TRITON_ATTN", "TORCH_SDPA"),
            "xpu": ("FLASH_ATTN", "TRITON_ATTN", "TORCH_SDPA"),
            "tpu": ("PALLAS",)}.get(facts.kind, ("TORCH_SDPA",))


def auto_order(facts: PlatformFacts, dtype: torch.dtype | None = None) -> tuple[str, ...]:
    """The precedence without an override, highest first."""
    kind, cc = facts.kind, facts.capability
    if kind == "cuda":
        if cc is not None and cc >= (8, 0):
            return ("FLASH_ATTN", "TRITON_ATTN", "TORCH_SDPA")
        return ("FLASH_ATTN", "TORCH_SDPA")  # the list puts SDPA second below 8.0
    if kind == "rocm":
        return ("ROCM_AITER_FA", "FLASH_ATTN", "TORCH_SDPA")
    if kind == "xpu":
        return ("FLASH_ATTN", "TRITON_ATTN", "TORCH_SDPA")
    if kind == "tpu":
        return ("PALLAS",)
    return ("TORCH_SDPA",)


def fa_head_limit(facts: PlatformFacts) -> int:
    """FLASH_ATTN's largest head size here (a multiple of 8 up to it is supported)."""
    return FA4_HEAD_LIMIT if (facts.fa4 or facts.kind == "xpu") else FA_HEAD_LIMIT


def kernel_supports(facts: PlatformFacts, backend: str, head_size: int, dtype: torch.dtype) -> bool:
    """Whether ``backend`` imports and runs this head size, dtype and device."""
    if backend == "TORCH_SDPA":
        return True
    kind, cc = facts.kind, facts.capability
    if backend == "PALLAS":  # the TPU's own kernel, the only one it lists
        return kind == "tpu"
    if kind == "rocm":
        arch = facts.arch or ""
        if dtype not in HALF:
            return False
        if backend == "ROCM_AITER_FA":
            return facts.aiter and arch in AITER_ARCHS
        if backend == "FLASH_ATTN":  # upstream flash_attn on CDNA, its Triton-AMD build on RDNA
            return (arch in CDNA_ARCHS and (facts.flash_attn_pkg or facts.triton_amd)) or (
                arch in RDNA_ARCHS and facts.triton_amd)
        return False
    if backend == "XFORMERS":
        return "XFORMERS" in facts.kernels
    if backend not in facts.kernels:
        return False
    if backend == "FLASH_ATTN":
        if dtype not in HALF:
            return False
        if kind == "cuda" and (cc is None or cc < (8, 0)):
            return False
        return head_size % 8 == 0 and 0 < head_size <= fa_head_limit(facts)
    if backend == "TRITON_ATTN":
        return head_size >= 32
    if backend == "FLASHINFER":
        return (dtype in HALF and head_size in (64, 128, 256, 512)
                and cc is not None and (8, 0) <= cc <= (12, 1))
    return False


def _auto(facts: PlatformFacts, head_size: int, dtype: torch.dtype, order=auto_order, supports=kernel_supports) -> str:
    for backend in order(facts, dtype):
        if supports(facts, backend, head_size, dtype):
            return backend
    return "TORCH_SDPA"


_installed: list[PlatformFacts] = []


def current_platform_facts() -> PlatformFacts:
    """The installed facts, else this machine's (a machine without CUDA is a CPU)."""
    if _installed:
        return _installed[-1]
    if torch.cuda.is_available():
        raise NotImplementedError(
            "the reference does not probe a GPU: install its facts with use_platform() "
            "(conformance.platforms.real_cuda_facts() reads them on a CUDA machine)"
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

    Contract: without an override, the first backend of the platform's
    precedence that imports and supports ``head_size``, ``dtype`` and the
    device (``TORCH_SDPA`` at worst). An override (a backend name or an enum
    member with that ``.name``) is returned as given if the platform lists it
    for vision attention; an unknown or unsupported one raises ``ValueError``
    naming the backends accepted (never an ``AssertionError``, which
    ``python -O`` would strip). Environment variables such as
    ``VLLM_ATTENTION_BACKEND`` select the decoder's backend and do not change
    this answer; neither does where the override came from.
    """
    return select(current_platform_facts(), head_size, dtype, attn_backend_override)


def select(facts: PlatformFacts, head_size: int, dtype: torch.dtype, override: object | None = None, *,
           listed=vision_backends, order=auto_order, supports=kernel_supports) -> str:
    """The contract on ``facts``; the keywords are its parts, which a recorded
    departure (reference/departures.py) replaces one at a time."""
    if override is None:
        return _auto(facts, head_size, dtype, order, supports)
    name = _name(override)
    accepted = listed(facts)
    if name not in accepted:
        raise ValueError(
            f"attention backend {name!r} is not supported for vision attention on "
            f"{facts.kind}; accepted: {list(accepted)}"
        )
    return name
