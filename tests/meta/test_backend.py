"""Backend selection: the decision table, vLLM's real platform classes under
simulated hardware (the grid reaches FA and Triton, nothing leaks, a degraded
simulation fails loudly) and meta-tests with three broken candidates."""

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vllm_vision_conformance.reference.backend import PlatformFacts, get_vit_attn_backend, use_platform, vision_backends
from vllm_vision_conformance.strategies import backend as s_backend

from ..conftest import vllm_vision_source


# ---- the reference table --------------------------------------------------------

@given(s_backend.platform_facts(), s_backend.head_sizes(), s_backend.attention_dtypes(),
       st.sampled_from(["0.11", "0.27", "0.33"]))
def test_reference_contract(facts, head, dtype, group):
    facts = dataclasses.replace(facts, group=group)
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


# ---- vLLM's classes under simulated hardware ------------------------------------

@pytest.fixture(scope="module")
def sim():
    pytest.importorskip("vllm")
    from vllm_vision_conformance.conformance import platforms
    from vllm_vision_conformance.conformance.targets import import_vllm_vision

    if platforms.release_group() is None:
        pytest.skip("the installed vLLM's selection table is not modelled")
    vision = import_vllm_vision()
    with platforms.simulate(PlatformFacts("cuda", capability=(9, 0), group=platforms.release_group()), vision):
        vision.get_vit_attn_backend(64, torch.float16)  # first imports of the kernel modules
    return platforms, vision, platforms.release_group()


def test_grid_reaches_fa_and_triton_branches(sim):
    platforms, vision, group = sim
    seen = {}
    for cc, dtype, head in s_backend.grid():
        facts = PlatformFacts("cuda", capability=cc, group=group)
        with platforms.simulate(facts, vision):
            got = vision.get_vit_attn_backend(head, dtype).name
        with use_platform(facts):
            want = get_vit_attn_backend(head, dtype)
        if cc is not None:
            assert got == want, (cc, dtype, head)
        seen.setdefault(got, []).append((cc, dtype, head))
    assert "FLASH_ATTN" in seen and "TORCH_SDPA" in seen, seen.keys()
    assert ((9, 0), torch.bfloat16, 64 if group == "0.11" else 80) in seen["FLASH_ATTN"]
    if group != "0.11":
        assert "TRITON_ATTN" in seen and ((9, 0), torch.float32, 80) in seen["TRITON_ATTN"]
    else:
        assert "XFORMERS" in seen


def test_rocm_and_xpu_branches_reached(sim):
    platforms, vision, group = sim
    cases = [(PlatformFacts("rocm", arch="gfx942", aiter=True, group=group), torch.float16, "ROCM_AITER_FA"),
             (PlatformFacts("rocm", arch="gfx942", flash_attn_pkg=True, group=group), torch.float16, "FLASH_ATTN"),
             (PlatformFacts("rocm", arch="gfx942", group=group), torch.float16, "TORCH_SDPA"),
             (PlatformFacts("xpu", group=group), torch.float16, "FLASH_ATTN"),
             (PlatformFacts("cpu", group=group), torch.float16, "TORCH_SDPA")]
    if group != "0.11":
        cases.append((PlatformFacts("rocm", arch="gfx1100", triton_amd=True, group=group), torch.float16, "FLASH_ATTN"))
        cases.append((PlatformFacts("xpu", group=group), torch.float32, "TRITON_ATTN"))
    for facts, dtype, want in cases:
        with platforms.simulate(facts, vision):
            assert vision.get_vit_attn_backend(64, dtype).name == want, facts


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_injection_undone_after_every_example(sim, data):
    platforms, vision, group = sim
    facts = dataclasses.replace(data.draw(s_backend.platform_facts()), group=group)
    before = platforms.snapshot(vision)
    with platforms.simulate(facts, vision):
        try:
            vision.get_vit_attn_backend(data.draw(s_backend.head_sizes()), data.draw(s_backend.attention_dtypes()))
        except Exception:  # noqa: BLE001 - only the undo is under test here
            pass
    assert platforms.snapshot(vision) == before


def test_every_backend_unimportable_fails_loudly(sim, monkeypatch):
    platforms, vision, group = sim
    monkeypatch.setattr(platforms, "kernel_import_error", lambda name: "ImportError: simulated")
    with pytest.raises(platforms.SimulationDegraded, match="degrade to TORCH_SDPA"):
        with platforms.simulate(PlatformFacts("cuda", capability=(9, 0), group=group), vision):
            pass


def test_release_groups():
    from vllm_vision_conformance.conformance.platforms import release_group

    assert release_group("0.11.2") == "0.11" and release_group("0.27.0") == "0.27"
    assert release_group("0.33.0") == "0.33" and release_group("0.33.1") == "0.33"
    assert release_group("0.13.0") is None and release_group("0.30.0") is None


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
