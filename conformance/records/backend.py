"""Records of get_vit_attn_backend (reference/backend.py, strategies/backend.py):
this machine's answer, and vLLM's own platform classes under simulated
hardware (the simulation and its plumbing: conformance/platforms.py)."""

from __future__ import annotations

import torch

from ...reference.backend import PlatformFacts, use_platform
from ...strategies import backend as s_backend
from .. import adapter, platforms
from ..adapter import prepare_by_form
from ..checks import Check, Ctx, FunctionSpec, agrees, call_probe, compare_outcomes, exc_name, raises, returns
from ..plain import Outcome, short


def _env_probe(view, ex: dict) -> Outcome:
    with adapter.environment(VLLM_ATTENTION_BACKEND="FLASH_ATTN"):
        return view.call(view.function, ex)


def _env_ignored(ctx: Ctx, ex: dict, got: Outcome, want: Outcome) -> None:
    compare_outcomes(ctx, want, got, ex)


def _sim_probe(view, ex: dict) -> dict:
    return platforms.simulated_call(view, ex["facts"], ex["head_size"], ex["dtype"], ex["attn_backend_override"])


def _backend_simulated(ctx: Ctx, ex: dict, got: dict, want: Outcome) -> None:
    compare_outcomes(ctx, want, got["got"], ex)
    if got["direct"] is not None:
        try:
            compare_outcomes(ctx, want, got["direct"], ex)
        except AssertionError as exc:
            raise ctx.diverge(f"platform method: {getattr(exc, 'what', exc)}", ex) from None


def _name_of(outcome: Outcome) -> str:
    if outcome.exc is not None:
        return f"raised {exc_name(outcome.exc)}"
    value = outcome.value
    return value.name if hasattr(value, "cls") and hasattr(value, "name") else value if type(value) is str \
        else short(value)


def _grid_prepare(ctx: Ctx, ex: dict) -> dict:
    platforms.prepare_simulated(ctx, dict(ex, facts=PlatformFacts("cuda")))
    return ex


def _grid_points(known: bool):
    return [(fa4, cc, dtype, head) for fa4 in (False, True) for cc, dtype, head in s_backend.grid()
            if (cc is not None) == known]


def _grid_probe(view, ex: dict) -> list:
    out = []
    for fa4, cc, dtype, head in _grid_points(ex["known"]):
        facts = PlatformFacts("cuda", capability=cc, fa4=fa4)
        out.append(platforms.simulated_call(view, facts, head, dtype, None))
    return out


def _grid_ref(view, ex: dict) -> list:
    """The reference's (or a recorded rule's) answer at every grid point."""
    out = []
    for fa4, cc, dtype, head in _grid_points(ex["known"]):
        with use_platform(PlatformFacts("cuda", capability=cc, fa4=fa4)):
            out.append(view.call(view.function, {"head_size": head, "dtype": dtype, "attn_backend_override": None}))
    return out


def _cuda_grid(ctx: Ctx, ex: dict, got: list, wanted: list) -> None:
    """Every (capability, dtype, head size, FA4) of the acceptance grid, no
    override, every kernel importable; all mismatches in one sentence.
    ``ex["known"]``: the known capabilities, or only the unknown one."""
    points, bad, wrong = 0, {}, 0
    for (fa4, cc, dtype, head), observed, expected in zip(_grid_points(ex["known"]), got, wanted):
        want = _name_of(expected)
        for where, outcome in (("", observed["got"]), ("platform method: ", observed["direct"])):
            if outcome is None:
                continue
            points += 0 if where else 1
            if _name_of(outcome) != want:
                wrong += 0 if where else 1
                key = (f"{where}cc={cc} {str(dtype).replace('torch.', '')}"
                       f"{' fa4' if fa4 else ''} returned {_name_of(outcome)}, should be {want}")
                bad.setdefault(key, []).append(head)
    if bad:
        detail = "; ".join(f"{k} (heads {v})" for k, v in sorted(bad.items()))
        raise ctx.diverge(f"{wrong} of {points} simulated CUDA grid points differ: {detail}",
                          {"grid": "capabilities x dtypes x head sizes x fa4"})


def _sim_check(check_id: str, doc: str, facts, override: bool | None, examples=()) -> Check:
    return Check(check_id, doc, _sim_probe, _backend_simulated, strategy=s_backend.simulated_queries(facts, override),
                 needs_reference=True, examples=tuple(examples), ref_probe=platforms.reference_call,
                 prepare=platforms.prepare_simulated)


def _edge(facts, head, dtype, override=None) -> dict:
    return {"facts": facts, "head_size": head, "dtype": dtype, "attn_backend_override": override}


def _edges():
    return {
        "cuda": [_edge(PlatformFacts("cuda", capability=(9, 0)), 80, torch.bfloat16),
                 _edge(PlatformFacts("cuda", capability=(9, 0)), 80, torch.float32),
                 _edge(PlatformFacts("cuda", capability=(7, 5)), 64, torch.float16),
                 _edge(PlatformFacts("cuda", capability=(9, 0), fa4=True), 320, torch.float16)],
        "cuda-override": [_edge(PlatformFacts("cuda", capability=(9, 0)), 64, torch.float16, "TORCH_SDPA"),
                          _edge(PlatformFacts("cuda", capability=(9, 0), override_source="multimodal_config"), 64,
                                torch.float16, s_backend.OverridePick("listed", 0))],
        # a name the release's enum may not have at all (0.33.0 dropped XFORMERS): refused, not a harness error
        "cuda-override-unlisted": [_edge(PlatformFacts("cuda", capability=(9, 0)), 64, torch.float16, "XFORMERS")],
        "rocm": [_edge(PlatformFacts("rocm", arch="gfx942", flash_attn_pkg=True), 80, torch.bfloat16),
                 _edge(PlatformFacts("rocm", arch="gfx1100", triton_amd=True), 80, torch.float16)],
        "xpu": [_edge(PlatformFacts("xpu"), 64, torch.float16)],
        "cpu": [_edge(PlatformFacts("cpu"), 64, torch.float16, "TORCH_SDPA"), _edge(PlatformFacts("unspecified"), 72, torch.float32)],
    }


_EDGES = _edges()


BACKEND = FunctionSpec("get_vit_attn_backend", "the ViT attention backend: this machine, and simulated platforms", [
    agrees("property-default", "no override: the platform's default for any head size and dtype",
           s_backend.backend_queries(override=False)),
    returns("case-override-supported", "an override the platform supports is honoured",
            {"head_size": 64, "dtype": torch.float16, "attn_backend_override": "TORCH_SDPA"}, "TORCH_SDPA"),
    raises("error-override-unsupported", "FLASH_ATTN on a CPU: ValueError naming what is accepted",
           {"head_size": 64, "dtype": torch.float16, "attn_backend_override": "FLASH_ATTN"}, ValueError),
    Check("case-env-does-not-select", "VLLM_ATTENTION_BACKEND (the decoder's setting) does not change the answer",
          _env_probe, _env_ignored, example={"head_size": 80, "dtype": torch.bfloat16}, needs_reference=True,
          ref_probe=call_probe),
    _sim_check("property-cuda-simulated", "simulated CUDA of a known capability (FA4, importable kernels), "
               "no override: the decision table", s_backend.cuda_facts(known_capability=True), False,
               _EDGES["cuda"]),
    _sim_check("property-cuda-unknown-capability-simulated", "simulated CUDA whose capability is unknown, "
               "no override", s_backend.cuda_facts(known_capability=False), False),
    _sim_check("property-cuda-override-listed-simulated", "simulated CUDA, an override the platform lists (from "
               "the argument or the multimodal config): honoured", s_backend.cuda_facts(all_kernels=True),
               "listed", _EDGES["cuda-override"]),
    _sim_check("property-cuda-override-unlisted-simulated", "simulated CUDA, an override the platform does not "
               "list: ValueError", s_backend.cuda_facts(all_kernels=True), "unlisted",
               _EDGES["cuda-override-unlisted"]),
    _sim_check("property-rocm-simulated", "simulated ROCm (arch, flash_attn, Triton-AMD, AITER), no override",
               s_backend.rocm_facts(), False, _EDGES["rocm"]),
    _sim_check("property-rocm-override-listed-simulated", "simulated ROCm, a listed override: honoured",
               s_backend.rocm_facts(), "listed"),
    _sim_check("property-rocm-override-unlisted-simulated", "simulated ROCm, an unlisted override: ValueError",
               s_backend.rocm_facts(), "unlisted"),
    _sim_check("property-xpu-simulated", "simulated XPU, no override", s_backend.xpu_facts(), False, _EDGES["xpu"]),
    _sim_check("property-xpu-override-listed-simulated", "simulated XPU, a listed override: honoured",
               s_backend.xpu_facts(), "listed"),
    _sim_check("property-xpu-override-unlisted-simulated", "simulated XPU, an unlisted override: ValueError",
               s_backend.xpu_facts(), "unlisted"),
    _sim_check("property-tpu-simulated", "simulated TPU (the in-tree TPU platform class, where a release has "
               "one), no override", s_backend.tpu_facts(), False),
    _sim_check("property-tpu-override-listed-simulated", "simulated TPU, a listed override: honoured",
               s_backend.tpu_facts(), "listed"),
    _sim_check("property-tpu-override-unlisted-simulated", "simulated TPU, an unlisted override: ValueError",
               s_backend.tpu_facts(), "unlisted"),
    _sim_check("property-cpu-simulated", "vLLM's CPU and Unspecified platform classes, no override or a listed one",
               s_backend.cpu_facts(), "listed", _EDGES["cpu"]),
    _sim_check("property-cpu-override-unlisted-simulated", "vLLM's CPU and Unspecified platform classes, an "
               "unlisted override: ValueError", s_backend.cpu_facts(), "unlisted"),
    Check("case-cuda-grid", "simulated CUDA: capability 7.0-12.0 x fp16/bf16/fp32 x head sizes 16-320 x FA4, "
          "each equal to the decision table", _grid_probe, _cuda_grid, example={"known": True},
          needs_reference=True, ref_probe=_grid_ref, prepare=_grid_prepare),
    Check("case-cuda-grid-unknown-capability", "the same grid with the capability unknown",
          _grid_probe, _cuda_grid, example={"known": False}, needs_reference=True, ref_probe=_grid_ref,
          prepare=_grid_prepare),
])


# A release's form may not take an override: refused per check.
for _check in BACKEND.checks:
    _check.prepare = _check.prepare or prepare_by_form

RECORDS = [BACKEND]
