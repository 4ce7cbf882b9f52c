"""Backend selection: the one contract, the recorded departures (each rule
differs from the contract where its docstring says, and only there), vLLM's real
platform classes under simulated hardware on any release (the grid reaches FA
and Triton, nothing leaks, a degraded simulation fails loudly) and meta-tests
with three broken candidates."""

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vllm_vision_conformance.reference import departures
from vllm_vision_conformance.reference.backend import (PlatformFacts, get_vit_attn_backend, kernel_supports,
                                                      use_platform, vision_backends)
from vllm_vision_conformance.strategies import backend as s_backend

from ..conftest import vllm_vision_source


# ---- the reference table --------------------------------------------------------

@given(s_backend.platform_facts(), s_backend.head_sizes(), s_backend.attention_dtypes())
def test_reference_contract(facts, head, dtype):
    with use_platform(facts):
        name = get_vit_attn_backend(head, dtype)
        other = get_vit_attn_backend(head, dtype)  # pure
        moved = dataclasses.replace(facts, override_source="argument" if facts.override_source != "argument"
                                    else "multimodal_config")
    with use_platform(moved):
        assert get_vit_attn_backend(head, dtype) == name  # the override's source does not matter
    assert name == other and name in vision_backends(facts)
    if dtype == torch.float32:
        assert name not in ("FLASH_ATTN", "ROCM_AITER_FA", "FLASHINFER")
    if name == "TRITON_ATTN":
        assert head >= 32
    if name != "TORCH_SDPA":  # chosen only where the kernel supports the query (the invariant)
        assert kernel_supports(facts, name, head, dtype)
    if facts.kind == "cuda" and facts.capability is None:
        assert name not in ("FLASH_ATTN", "FLASHINFER")  # an unknown capability supports none that needs one


@given(s_backend.platform_facts(), s_backend.backend_names())
def test_reference_override_honoured_or_refused(facts, name):
    with use_platform(facts):
        if name in vision_backends(facts):
            assert get_vit_attn_backend(64, torch.float16, attn_backend_override=name) == name
        else:
            with pytest.raises(ValueError, match="accepted"):
                get_vit_attn_backend(64, torch.float16, attn_backend_override=name)


def test_reference_cpu_unchanged():
    assert get_vit_attn_backend(64, torch.float16) == "TORCH_SDPA"


def test_reference_has_no_release_groups():
    from vllm_vision_conformance.reference import backend

    assert not hasattr(backend, "RELEASE_GROUPS") and "group" not in {f.name for f in dataclasses.fields(PlatformFacts)}


# ---- the recorded departures: each differs from the contract, as its words say ----

# A point where each rule's docstring says the release departs: (rule, facts, head, dtype, override, its answer).
DEPARTS = [
    ("without-support-fa", PlatformFacts("cuda", capability=(9, 0)), 64, torch.float16, None, "XFORMERS"),
    ("without-support-fa", PlatformFacts("rocm", arch="gfx942", aiter=True), 64, torch.float16, None, "TORCH_SDPA"),
    ("cuda-fa-else-xformers", PlatformFacts("cuda", capability=(10, 0)), 64, torch.float16, None, "TORCH_SDPA"),
    ("cuda-fa-else-xformers", PlatformFacts("cuda", capability=(9, 0)), 80, torch.float16, None, "XFORMERS"),
    ("cuda-fa-else-xformers", PlatformFacts("cuda", capability=(9, 0)), 64, torch.float32, None, "XFORMERS"),
    ("cuda-fa-else-sdpa", PlatformFacts("cuda", capability=(9, 0)), 80, torch.float32, None, "TORCH_SDPA"),
    ("cuda-fa-else-sdpa", PlatformFacts("cuda", capability=(9, 0), fa4=True), 320, torch.float16, None, "TORCH_SDPA"),
    ("cuda-walks-list-skipping-sdpa", PlatformFacts("cuda", capability=(7, 5)), 64, torch.float16, None,
     "TRITON_ATTN"),
    ("cuda-walks-list-skipping-sdpa", PlatformFacts("cuda"), 64, torch.float16, None, "FLASH_ATTN"),
    ("cuda-fa4-heads-ignored", PlatformFacts("cuda", capability=(9, 0), fa4=True), 320, torch.float16, None,
     "TRITON_ATTN"),
    ("cuda-unknown-capability-fa", PlatformFacts("cuda"), 64, torch.bfloat16, None, "FLASH_ATTN"),
    ("rocm-aiter-on-gfx90a", PlatformFacts("rocm", arch="gfx90a", aiter=True), 64, torch.float16, None,
     "ROCM_AITER_FA"),
    ("rocm-aiter-any-dtype", PlatformFacts("rocm", arch="gfx942", aiter=True), 64, torch.float32, None,
     "ROCM_AITER_FA"),
    ("rocm-fa-any-dtype", PlatformFacts("rocm", arch="gfx942", flash_attn_pkg=True), 64, torch.float32, None,
     "FLASH_ATTN"),
    ("rocm-fa-without-package", PlatformFacts("rocm", arch="gfx90a"), 64, torch.float16, None, "FLASH_ATTN"),
    ("rocm-no-rdna-fa", PlatformFacts("rocm", arch="gfx1100", triton_amd=True), 64, torch.float16, None,
     "TORCH_SDPA"),
    ("xpu-sdpa", PlatformFacts("xpu"), 64, torch.float16, None, "TORCH_SDPA"),
    ("xpu-fa-always", PlatformFacts("xpu"), 64, torch.float32, None, "FLASH_ATTN"),
    ("xpu-fp32-triton", PlatformFacts("xpu"), 16, torch.float32, "TORCH_SDPA", "TRITON_ATTN"),
    ("xpu-fp32-triton", PlatformFacts("xpu"), 600, torch.float16, None, "FLASH_ATTN"),
    ("override-unchecked", PlatformFacts("cpu"), 64, torch.float16, "FLASH_ATTN", "FLASH_ATTN"),
]


def _answer(fn, facts, head, dtype, override):
    with use_platform(facts):
        try:
            return fn(head, dtype, attn_backend_override=override)
        except Exception as exc:  # noqa: BLE001
            return type(exc).__name__


@pytest.mark.parametrize("rule,facts,head,dtype,override,answer", DEPARTS, ids=lambda v: str(v)[:30])
def test_each_rule_departs_where_it_says(rule, facts, head, dtype, override, answer):
    fn = departures.get("get_vit_attn_backend", rule)
    assert _answer(fn, facts, head, dtype, override) == answer
    assert _answer(get_vit_attn_backend, facts, head, dtype, override) != answer  # the contract differs there


def test_every_backend_rule_has_a_departing_point():
    assert {r for r, *_ in DEPARTS} == set(departures.BACKEND_RULES)


@settings(max_examples=300)
@given(s_backend.platform_facts(), s_backend.head_sizes(), s_backend.attention_dtypes(),
       st.sampled_from(sorted(departures.BACKEND_RULES)))
def test_a_rule_changes_only_its_platform(facts, head, dtype, rule):
    """A rule about one platform (its name's first word) answers as the contract on every other."""
    kind = rule.split("-")[0]
    if kind not in ("cuda", "rocm", "xpu") or facts.kind == kind:
        return
    fn = departures.get("get_vit_attn_backend", rule)
    assert _answer(fn, facts, head, dtype, None) == _answer(get_vit_attn_backend, facts, head, dtype, None)


def test_rules_join_with_plus():
    joined = departures.get("get_vit_attn_backend", "cuda-unknown-capability-fa+cuda-fa4-heads-ignored")
    facts = PlatformFacts("cuda", fa4=True)
    assert _answer(joined, facts, 64, torch.float16, None) == "FLASH_ATTN"  # the first rule
    assert _answer(joined, facts, 320, torch.float16, None) == "TORCH_SDPA"  # both: FA only to 256
    assert departures.get("get_vit_attn_backend", "cuda-fa-else-sdpa+no-such-rule") is None


# ---- vLLM's classes under simulated hardware ------------------------------------

@pytest.fixture(scope="module")
def sim():
    pytest.importorskip("vllm")
    from vllm_vision_conformance.conformance import platforms
    from vllm_vision_conformance.conformance.targets import import_vllm_vision

    vision = import_vllm_vision()
    with platforms.simulate(PlatformFacts("cuda", capability=(9, 0)), vision):
        vision.get_vit_attn_backend(64, torch.float16)  # first imports of the kernel modules
    return platforms, vision


def test_grid_reaches_fa_and_triton_branches(sim):
    platforms, vision = sim
    seen = {}
    for cc, dtype, head in s_backend.grid():
        facts = PlatformFacts("cuda", capability=cc)
        with platforms.simulate(facts, vision):
            got = vision.get_vit_attn_backend(head, dtype).name
        with use_platform(facts):
            want = get_vit_attn_backend(head, dtype)
        if cc is not None:
            assert got == want, (cc, dtype, head)
        seen.setdefault(got, []).append((cc, dtype, head))
    assert "FLASH_ATTN" in seen and "TORCH_SDPA" in seen, seen.keys()
    assert ((9, 0), torch.bfloat16, 80) in seen["FLASH_ATTN"]
    assert "TRITON_ATTN" in seen and ((9, 0), torch.float32, 80) in seen["TRITON_ATTN"]


def test_rocm_and_xpu_branches_reached(sim):
    platforms, vision = sim
    cases = [(PlatformFacts("rocm", arch="gfx942", aiter=True), torch.float16, "ROCM_AITER_FA"),
             (PlatformFacts("rocm", arch="gfx942", flash_attn_pkg=True), torch.float16, "FLASH_ATTN"),
             (PlatformFacts("rocm", arch="gfx942"), torch.float16, "TORCH_SDPA"),
             (PlatformFacts("xpu"), torch.float16, "FLASH_ATTN"),
             (PlatformFacts("cpu"), torch.float16, "TORCH_SDPA")]
    cases.append((PlatformFacts("rocm", arch="gfx1100", triton_amd=True), torch.float16, "FLASH_ATTN"))
    cases.append((PlatformFacts("xpu"), torch.float32, "TRITON_ATTN"))
    for facts, dtype, want in cases:
        with platforms.simulate(facts, vision):
            assert vision.get_vit_attn_backend(64, dtype).name == want, facts


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_injection_undone_after_every_example(sim, data):
    platforms, vision = sim
    facts = data.draw(s_backend.platform_facts())
    before = platforms.snapshot(vision)
    with platforms.simulate(facts, vision):
        try:
            vision.get_vit_attn_backend(data.draw(s_backend.head_sizes()), data.draw(s_backend.attention_dtypes()))
        except Exception:  # noqa: BLE001 - only the undo is under test here
            pass
    assert platforms.snapshot(vision) == before


def test_every_backend_unimportable_fails_loudly(sim, monkeypatch):
    platforms, vision = sim
    monkeypatch.setattr(platforms, "kernel_import_error", lambda name: "ImportError: simulated")
    with pytest.raises(platforms.SimulationDegraded, match="degrade to TORCH_SDPA"):
        with platforms.simulate(PlatformFacts("cuda", capability=(9, 0)), vision):
            pass


# ---- meta-tests: three broken candidates -----------------------------------------

RETURN = "    return current_platform.get_vit_attn_backend(\n"
BROKEN = {
    "fp32-flash": ("property-cuda-simulated",
                   RETURN, "    if dtype == torch.float32:\n        return AttentionBackendEnum.FLASH_ATTN\n" + RETURN),
    "ignores-override": ("property-cuda-override-listed-simulated", "backend=attn_backend_override,", "backend=None,"),
    "unlisted": ("case-cuda-grid", RETURN,
                 "    if attn_backend_override is None and current_platform.is_cuda():\n"
                 "        return AttentionBackendEnum.ROCM_AITER_FA\n" + RETURN),
}
SIM_CHECKS = ["property-cuda-simulated", "property-cuda-override-listed-simulated",
              "property-cuda-override-unlisted-simulated", "case-cuda-grid", "case-cuda-grid-unknown-capability",
              "property-xpu-simulated", "property-cpu-simulated", "property-cpu-override-unlisted-simulated"]


@pytest.mark.slow
def test_broken_candidates_diverge(cli, tmp_path):
    source = vllm_vision_source()
    if source.count(RETURN) != 1 or "backend=attn_backend_override," not in source:
        pytest.skip("the installed vLLM's vision.py is not in the 0.15+ form these mutations target")
    args, only = [], []
    for name, (check, old, new) in BROKEN.items():
        path = tmp_path / f"{name.replace('-', '_')}.py"
        path.write_text(source.replace(old, new, 1))
        args += ["--impl", f"{name}={path}", "--expectations", f"{name}=vllm-0.33.0"]
        only += [f"{name}.get_vit_attn_backend.{c}" for c in SIM_CHECKS]
    copy = tmp_path / "faithful.py"
    copy.write_text(source)
    args += ["--impl", f"copy={copy}", "--expectations", "copy=vllm-0.33.0"]
    only += [f"copy.get_vit_attn_backend.{c}" for c in SIM_CHECKS]
    status, report, output = cli(*args, "--targets", ",".join([*BROKEN, "copy"]), "--only", ",".join(only),
                                 profile="dev")
    assert report is not None, output[-3000:]
    assert status == 1, output[-3000:]
    for name, (check, _, _) in BROKEN.items():
        assert report["table"]["get_vit_attn_backend"][name]["status"] == "diverges", output[-3000:]
        assert f"- {name}.get_vit_attn_backend.{check}:" in output, f"{name}: {check} not reported\n{output[-3000:]}"
    assert report["table"]["get_vit_attn_backend"]["copy"]["status"] != "diverges", output[-3000:]
