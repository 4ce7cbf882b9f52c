"""Known departures: the rules by which vLLM releases are recorded to depart
from the contract, each stated exactly as a small function.

An expectations entry may name one or several (``FUNCTION CHECK rule=NAME``,
``rule=A,B``: an input follows the entry when it follows any one of them). The check
then compares the target, on every input, with the contract (the reference)
and with the rule: an input where it matches the rule is a recorded
departure; an input where it matches neither is a new divergence, reported
as such even though the check has an entry. So a recorded bug cannot hide a
second one in the same check.

Each rule is written from the release's observed behaviour, described in
words in its docstring (and in docs/findings.md); it is not vLLM's code. A
rule is the whole documented function: the reference with one rule changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from . import encoder_info as _ei, encoder_outputs as _eo, pos_ids as _pi

RULES: dict[tuple[str, str], Callable] = {}  # (documented function, rule name) -> the rule


def rule(function: str, name: str):
    def register(fn: Callable) -> Callable:
        RULES[(function, name)] = fn
        fn.rule = name
        return fn
    return register


def get(function: str, name: str) -> Callable | None:
    """The rule ``name`` of ``function``; for get_vit_attn_backend, rules joined by "+" apply together."""
    found = RULES.get((function, name))
    if found is None and function == "get_vit_attn_backend" and "+" in name and backend_parts(name):
        found = backend_rule(name)
    return found


def names(function: str) -> list[str]:
    return sorted(n for f, n in RULES if f == function)


# ---- resolve_visual_encoder_outputs ------------------------------------------

def _last_entry_minus_one(select_layers, index, position, max_possible_layers) -> bool:
    return index == len(select_layers) - 1 and select_layers[-1] in (max_possible_layers - 1, -1)


@rule("resolve_visual_encoder_outputs", "last-entry-max-minus-one-or-minus-one")
def resolve_last_entry_rule(encoder_outputs, post_layer_norm, *, select_layers=None, max_possible_layers=None,
                            last_hs_proc=None, feature_select_strategy=None):
    """vLLM 0.11.1 and later: the post norm (and, since 0.15, ``last_hs_proc``)
    goes to the *last entry* of ``select_layers`` only, and only when it is
    written ``max_possible_layers - 1`` or ``-1``. Everything else is the
    contract's."""
    return _eo._resolve(encoder_outputs, post_layer_norm, select_layers, max_possible_layers,
                                    last_hs_proc, feature_select_strategy, _last_entry_minus_one)


@rule("resolve_visual_encoder_outputs", "norm-on-the-list-when-last-entry-is-count-minus-one")
def resolve_norm_on_list(encoder_outputs, post_layer_norm, *, select_layers=None, max_possible_layers=None,
                         last_hs_proc=None, feature_select_strategy=None):
    """vLLM 0.10.x and 0.11.0: when the last entry of the selection is
    ``len(select_layers) - 1`` or ``-1``, the post norm is called on the whole
    list of hidden states, which raises ``TypeError``; otherwise no state gets
    the norm. Everything else is the contract's."""
    if select_layers and post_layer_norm is not None and select_layers[-1] in (len(select_layers) - 1, -1):
        raise TypeError("the post norm was applied to the list of hidden states")
    return _eo._resolve(encoder_outputs, None if select_layers else post_layer_norm, select_layers,
                                    max_possible_layers, last_hs_proc, feature_select_strategy,
                                    _eo._is_final_layer)


# ---- get_llm_pos_ids_for_vision ------------------------------------------------

@rule("get_llm_pos_ids_for_vision", "t-index-through-float32")
def pos_ids_t_float32(start_idx, vision_idx, spatial_merge_size, t_index, grid_hs, grid_ws):
    """vLLM 0.11.1 - 0.27.x: the temporal positions pass through a float32
    tensor before becoming integers, so each is rounded to the nearest float32
    (2**24 + 1 becomes 2**24). Everything else is the contract's."""
    rounded = torch.tensor(list(t_index), dtype=torch.float32).long().tolist() if len(t_index) else []
    return _pi.get_llm_pos_ids_for_vision(start_idx, vision_idx, spatial_merge_size, rounded, grid_hs, grid_ws)


# ---- get_vision_encoder_info --------------------------------------------------

class _CLIPAssertsDivisible(_ei.CLIPEncoderInfo):
    def get_patch_grid_length(self) -> int:
        image, patch = self.get_image_size(), self.get_patch_size()
        if image % patch:
            raise AssertionError()
        return image // patch


class _PixtralFloors(_ei.PixtralHFEncoderInfo):
    def get_patch_grid_length(self) -> int:
        return self.get_image_size() // self.get_patch_size()

    def get_num_image_tokens(self, *, image_width: int, image_height: int) -> int:
        try:
            return super().get_num_image_tokens(image_width=image_width, image_height=image_height)
        except ValueError:
            return 0  # a side downscaled to 0 pixels: ceil(0 / p) tokens


@rule("get_vision_encoder_info", "pixtral-floors")
def encoder_info_pixtral_floors(hf_config):
    """Every release: Pixtral's grid length floors ``image_size / p`` (the
    contract rounds up, as the processor pads to whole tokens), and an image
    whose smaller side downscales to 0 pixels counts 0 tokens (the contract
    refuses it, as the processor does). Everything else is the contract's."""
    info = _ei.get_vision_encoder_info(hf_config)
    if type(info) is _ei.PixtralHFEncoderInfo:
        return _PixtralFloors(hf_config)
    return info


@rule("get_vision_encoder_info", "clip-asserts-divisible")
def encoder_info_clip_asserts(hf_config):
    """Every release: CLIP's grid length (and so its token count) raises a bare
    ``AssertionError`` when ``image_size`` is not a multiple of ``patch_size``,
    where the contract floors. Everything else is the contract's."""
    info = _ei.get_vision_encoder_info(hf_config)
    if type(info) is _ei.CLIPEncoderInfo:
        return _CLIPAssertsDivisible(hf_config)
    return info


# ---- get_vit_attn_backend ------------------------------------------------------
#
# The contract (reference/backend.py) is built from parts: the backends a platform
# lists, its precedence, and what each kernel supports. Each rule below changes one
# part as an older release had it; a release that departs in several parts is
# recorded with the rules joined by "+" (``rule=cuda-fa-else-sdpa+rocm-fa-any-dtype``),
# which apply together. Where each came from and which release changed it:
# docs/backend.md, "Departures by release".

from . import backend as _be  # noqa: E402


@dataclasses.dataclass(frozen=True)
class BackendParts:
    """The parts of the selection a departure changes; the defaults are the contract's."""

    cuda: str = "contract"  # "xformers", "fa-else-xformers", "fa-else-sdpa", "walks-list-skipping-sdpa"
    fa4_heads: bool = True  # FA4 lets FLASH_ATTN take head sizes up to 512
    unknown_capability_fa: bool = False  # FLASH_ATTN chosen on a CUDA device of unknown capability
    rocm: str = "contract"  # "sdpa"
    aiter_archs: tuple = _be.AITER_ARCHS
    aiter_half_only: bool = True
    rocm_fa_half_only: bool = True
    rocm_fa_needs_package: bool = True  # upstream flash_attn (or its Triton-AMD build) installed
    rdna_fa: bool = True
    xpu: str = "contract"  # "sdpa", "fa-always", "fp32-triton"
    override: str = "contract"  # "unchecked": returned as given


BACKEND_RULES: dict[str, tuple[dict, str]] = {
    # name: (the parts it changes, what the release does, in words)
    "without-support-fa": (dict(cuda="xformers", rocm="sdpa", xpu="sdpa"),
                           "get_vit_attn_backend(support_fa=False), the default of the ViTs without "
                           "FlashAttention: XFORMERS on CUDA, TORCH_SDPA everywhere else"),
    "cuda-fa-else-xformers": (dict(cuda="fa-else-xformers"),
                              "CUDA: cc >= 10.0 TORCH_SDPA; fp32 XFORMERS; cc >= 8.0 FLASH_ATTN for head sizes "
                              "32, 64, ..., 256 (a FLASH_ATTN class that does not import raises), else XFORMERS "
                              "(whether xformers imports is not checked)"),
    "cuda-fa-else-sdpa": (dict(cuda="fa-else-sdpa"),
                          "CUDA: FLASH_ATTN when cc >= 8.0 and it supports the head size (<= 256, FA4 not "
                          "considered) and dtype, else TORCH_SDPA: no TRITON_ATTN"),
    "cuda-walks-list-skipping-sdpa": (dict(cuda="walks-list-skipping-sdpa"),
                                      "CUDA: FLASH_ATTN (cc >= 8.0 or unknown; <= 256), then TRITON_ATTN on any "
                                      "capability, then TORCH_SDPA"),
    "cuda-fa4-heads-ignored": (dict(fa4_heads=False), "CUDA: FLASH_ATTN takes head sizes up to 256 even with FA4"),
    "cuda-unknown-capability-fa": (dict(unknown_capability_fa=True),
                                   "CUDA of unknown capability: FLASH_ATTN chosen without the cc >= 8.0 check"),
    "rocm-aiter-on-gfx90a": (dict(aiter_archs=("gfx90a", "gfx942", "gfx950")),
                             "ROCm: ROCM_AITER_FA on gfx90a (CDNA 2) too"),
    "rocm-aiter-any-dtype": (dict(aiter_half_only=False), "ROCm: ROCM_AITER_FA for float32 too"),
    "rocm-fa-any-dtype": (dict(rocm_fa_half_only=False), "ROCm: FLASH_ATTN for float32 too"),
    "rocm-fa-without-package": (dict(rocm_fa_needs_package=False),
                                "ROCm: FLASH_ATTN on CDNA whether flash_attn is installed or not"),
    "rocm-no-rdna-fa": (dict(rdna_fa=False), "ROCm: no FLASH_ATTN on RDNA (Triton-AMD not considered)"),
    "xpu-sdpa": (dict(xpu="sdpa"), "XPU: TORCH_SDPA (no XPU selection: the base platform's)"),
    "xpu-fa-always": (dict(xpu="fa-always"), "XPU: FLASH_ATTN for every head size and dtype"),
    "xpu-fp32-triton": (dict(xpu="fp32-triton"),
                        "XPU: float32 gets TRITON_ATTN before the override is looked at (any override the "
                        "release's enum knows, any head size); fp16/bf16 FLASH_ATTN for every head size"),
    "override-unchecked": (dict(override="unchecked"), "an override is returned as given, listed or not"),
}

_FA11_HEADS = (32, 64, 96, 128, 160, 192, 224, 256)


def backend_parts(name: str) -> BackendParts | None:
    """The parts of ``a+b+...`` (None: a name is not a backend rule)."""
    changes = {}
    for part in name.split("+"):
        if part not in BACKEND_RULES:
            return None
        changes.update(BACKEND_RULES[part][0])
    return BackendParts(**changes)


def _supports(parts: BackendParts):
    def supports(facts, backend, head_size, dtype):
        half = dtype in _be.HALF
        if facts.kind == "rocm" and backend in ("ROCM_AITER_FA", "FLASH_ATTN"):
            arch = facts.arch or ""
            if backend == "ROCM_AITER_FA":
                return facts.aiter and arch in parts.aiter_archs and (half or not parts.aiter_half_only)
            if not half and parts.rocm_fa_half_only:
                return False
            cdna = arch in _be.CDNA_ARCHS and (facts.flash_attn_pkg or facts.triton_amd
                                               or not parts.rocm_fa_needs_package)
            return cdna or (parts.rdna_fa and arch in _be.RDNA_ARCHS and facts.triton_amd)
        if facts.kind == "cuda" and backend == "FLASH_ATTN":
            if facts.capability is None and parts.unknown_capability_fa:
                facts = dataclasses.replace(facts, capability=(8, 0))
            if not parts.fa4_heads:
                facts = dataclasses.replace(facts, fa4=False)
        return _be.kernel_supports(facts, backend, head_size, dtype)
    return supports


def _cuda_old(parts: BackendParts, facts, head_size: int, dtype) -> str | None:
    cc, kernels, half = facts.capability, facts.kernels, dtype in _be.HALF
    fa_fits = half and "FLASH_ATTN" in kernels and head_size % 8 == 0 and 0 < head_size <= 256
    if parts.cuda == "xformers":
        return "XFORMERS"
    if parts.cuda == "fa-else-xformers":
        if cc is not None and cc >= (10, 0):
            return "TORCH_SDPA"
        if not half or cc is None or cc < (8, 0):
            return "XFORMERS"
        if "FLASH_ATTN" not in kernels:
            raise ModuleNotFoundError("vLLM's FLASH_ATTN backend does not import")
        return "FLASH_ATTN" if head_size in _FA11_HEADS else "XFORMERS"
    if parts.cuda == "fa-else-sdpa":
        return "FLASH_ATTN" if fa_fits and cc is not None and cc >= (8, 0) else "TORCH_SDPA"
    if parts.cuda == "walks-list-skipping-sdpa":
        if fa_fits and (cc is None or cc >= (8, 0)):
            return "FLASH_ATTN"
        return "TRITON_ATTN" if "TRITON_ATTN" in kernels and head_size >= 32 else "TORCH_SDPA"
    return None


def backend_rule(name: str) -> Callable:
    """The contract with the parts of ``name`` changed, as the documented function."""
    parts = backend_parts(name)
    supports = _supports(parts)

    def get_vit_attn_backend(head_size, dtype, *, attn_backend_override=None):
        facts = _be.current_platform_facts()
        override = attn_backend_override
        if override is not None and parts.override == "unchecked":
            return _be._name(override)
        if facts.kind == "xpu" and parts.xpu == "fp32-triton" and dtype == torch.float32 \
                and _be._name(override) != "XFORMERS":  # XFORMERS: not in those releases' enum
            return "TRITON_ATTN"
        if override is None:
            if facts.kind == "cuda":
                old = _cuda_old(parts, facts, head_size, dtype)
                if old is not None:
                    return old
            if (facts.kind == "rocm" and parts.rocm == "sdpa") or (facts.kind == "xpu" and parts.xpu == "sdpa"):
                return "TORCH_SDPA"
            if facts.kind == "xpu" and parts.xpu == "fa-always":
                return "FLASH_ATTN"
            if facts.kind == "xpu" and parts.xpu == "fp32-triton":
                return "FLASH_ATTN" if dtype in _be.HALF else "TRITON_ATTN"
        return _be.select(facts, head_size, dtype, override, supports=supports)

    get_vit_attn_backend.__doc__ = "; ".join(BACKEND_RULES[p][1] for p in name.split("+")) + \
        ". Everything else is the contract's."
    get_vit_attn_backend.rule = name
    return get_vit_attn_backend


for _rule_name in BACKEND_RULES:
    RULES[("get_vit_attn_backend", _rule_name)] = backend_rule(_rule_name)
