"""On a real CUDA GPU: vLLM's selection with the real device equals what the
simulation (vLLM's own platform classes given this device's facts) predicts, on
any release, and the chosen backend runs a small vision attention that matches
torch SDPA. Skipped without CUDA (tests/conftest.py)."""

import pytest
import torch

from vllm_vision_conformance.reference.backend import get_vit_attn_backend, use_platform

pytestmark = pytest.mark.gpu

HEADS = (16, 40, 64, 72, 80, 128, 256)
DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# Stated tolerance of the kernel against SDPA in fp32 arithmetic, per dtype.
TOL = {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float32: 1e-4}


@pytest.fixture(scope="module")
def real():
    pytest.importorskip("vllm")
    from vllm_vision_conformance.conformance import platforms
    from vllm_vision_conformance.conformance.targets import import_vllm_vision

    return platforms.real_cuda_facts(), import_vllm_vision(), platforms


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("head", HEADS)
def test_real_selection_equals_the_simulated_one(real, head, dtype):
    facts, vision, platforms = real
    got = vision.get_vit_attn_backend(head, dtype)
    with platforms.simulate(facts, vision):
        predicted = vision.get_vit_attn_backend(head, dtype)
    with use_platform(facts):
        contract = get_vit_attn_backend(head, dtype)
    assert got.name == predicted.name, (f"{facts}: vLLM chose {got.name} on this GPU, the simulation predicts "
                                        f"{predicted.name} (the contract says {contract})")


def _run(backend: str, q, k, v):
    """q, k, v: (batch, seq, heads, head_size). The chosen kernel, as vLLM's ViTs call it."""
    if backend == "FLASH_ATTN":
        from vllm.vllm_flash_attn import flash_attn_varlen_func
        b, s, h, d = q.shape
        cu = torch.arange(0, (b + 1) * s, s, dtype=torch.int32, device=q.device)
        out = flash_attn_varlen_func(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1), cu_seqlens_q=cu,
                                     cu_seqlens_k=cu, max_seqlen_q=s, max_seqlen_k=s, causal=False)
        return out.view(b, s, h, d)
    if backend == "TRITON_ATTN":
        from vllm.v1.attention.ops.vit_attn_wrappers import vit_triton_attn_wrapper  # 0.27+; not yet run on a GPU
        b, s = q.shape[:2]
        cu = torch.arange(0, (b + 1) * s, s, dtype=torch.int32, device=q.device)
        out = vit_triton_attn_wrapper(q, k, v, b, cu_seqlens=cu, max_seqlen=torch.tensor(s, dtype=torch.int32))
        return out.reshape(q.shape)
    if backend == "XFORMERS":
        from xformers import ops
        return ops.memory_efficient_attention_forward(q, k, v)
    return torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("head", (64, 72, 80, 128))
def test_chosen_backend_matches_sdpa(real, head, dtype):
    facts, vision, _ = real
    backend = vision.get_vit_attn_backend(head, dtype).name
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 197, 4, head, device="cuda", dtype=dtype) for _ in range(3))
    try:
        out = _run(backend, q, k, v)
    except ImportError as exc:
        pytest.fail(f"vLLM chose {backend}, which does not import here: {exc}")
    ref = torch.nn.functional.scaled_dot_product_attention(
        q.float().transpose(1, 2), k.float().transpose(1, 2), v.float().transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(out.float(), ref, atol=TOL[dtype], rtol=TOL[dtype])
