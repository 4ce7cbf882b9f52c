"""vLLM's own platform classes under simulated hardware, on a CPU-only machine.

:func:`simulate` builds the platform the facts describe from the installed
vLLM's real classes and injects it at the narrowest points: a subclass of
``CudaPlatformBase`` that reports the capability, the ROCm arch constants
computed by the release's own expressions, AITER / flash_attn presence,
kernel-module importability, an empty ``vllm_xpu_kernels``, and the target
module's ``current_platform``. Everything is undone when the context exits.
Every release is simulated the same way: its own classes decide, and the
reference holds one contract (docs/backend.md). See /work/shared/notes/backend-selection.md §3.
The end of the module is the simulated backend checks' plumbing: what a drawn
query becomes for a target, and the call under the simulated platform.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import importlib.util
import os
import re
import sys
import types
from typing import Any, Iterator

from ..reference.backend import PlatformFacts, use_platform, vision_backends
from ..strategies.backend import OverridePick
from . import adapter
from .checks import Ctx, NotApplicable, Unsupported

_MISSING = object()


class SimulationDegraded(RuntimeError):
    """The simulation would silently measure the fallback only (e.g. every
    kernel backend unimportable): a harness failure, never a divergence."""


# ---- patching with undo -------------------------------------------------------

class _Patches:
    def __init__(self) -> None:
        self.undo: list = []

    def attr(self, owner: Any, name: str, value: Any) -> None:
        saved = owner.__dict__.get(name, _MISSING) if isinstance(owner, type) else getattr(owner, name, _MISSING)
        setattr(owner, name, value)
        self.undo.append(lambda: delattr(owner, name) if saved is _MISSING else setattr(owner, name, saved))

    def item(self, mapping: dict, key: str, value: Any) -> None:
        saved = mapping.get(key, _MISSING)
        mapping[key] = value
        self.undo.append(lambda: mapping.pop(key, None) if saved is _MISSING else mapping.__setitem__(key, saved))

    def env(self, key: str, value: str | None) -> None:
        saved = os.environ.get(key)
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
        self.undo.append(lambda: os.environ.pop(key, None) if saved is None else os.environ.__setitem__(key, saved))

    def close(self) -> None:
        while self.undo:
            self.undo.pop()()


def _import_with_stubs(name: str, stubs: tuple[str, ...] = (), before=None) -> types.ModuleType:
    """Import ``name``; modules in ``stubs`` that fail to import are empty
    modules during the import only (the stubs are removed afterwards)."""
    if name in sys.modules:
        return sys.modules[name]
    p = _Patches()
    try:
        for stub in stubs:
            try:
                importlib.import_module(stub)
            except Exception:  # noqa: BLE001 - CUDA / XPU kernels are absent on this machine
                p.item(sys.modules, stub, types.ModuleType(stub))
                parent, _, child = stub.rpartition(".")
                if parent in sys.modules:
                    p.attr(sys.modules[parent], child, sys.modules[stub])
        if before is not None:
            before(p)
        return importlib.import_module(name)
    finally:
        p.close()


def _vllm_setup() -> None:
    try:  # 0.11.x: vision.py and the platforms import each other circularly
        import vllm.attention  # noqa: F401
    except Exception:  # noqa: BLE001
        pass


def _backend_enum():
    for path, name in (("vllm.v1.attention.backends.registry", "AttentionBackendEnum"),
                       ("vllm.attention.backends.registry", "AttentionBackendEnum"),
                       ("vllm.platforms.interface", "_Backend")):  # <= 0.11.0
        try:
            return getattr(importlib.import_module(path), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError("no AttentionBackendEnum (or _Backend) in this vLLM")


def backend_enum():
    _vllm_setup()
    return _backend_enum()


# <= 0.11.0: ``_Backend`` members are bare ``enum.auto()`` values; the platform code names
# the backend classes by these paths (cuda.py's ``is_attn_backend_supported(FLASH_ATTN_V1, ...)``).
_OLD_CLASSES = {"FLASH_ATTN": "vllm.v1.attention.backends.flash_attn.FlashAttentionBackend",
                "TRITON_ATTN": "vllm.v1.attention.backends.triton_attn.TritonAttentionBackend"}


def _backend_path(member) -> str:
    if hasattr(member, "get_path"):
        return member.get_path()
    return member.value if isinstance(member.value, str) else _OLD_CLASSES[member.name]


def _backend_module(member) -> str:
    return _backend_path(member).rpartition(".")[0]


@functools.lru_cache(maxsize=None)
def kernel_import_error(name: str) -> str | None:
    """Why vLLM's ``name`` backend class does not import here (None: it does)."""
    try:
        member = getattr(backend_enum(), name)
        if hasattr(member, "get_class"):
            member.get_class()
        else:
            module, _, cls = _backend_path(member).rpartition(".")
            getattr(importlib.import_module(module), cls)
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


def assert_kernels_import(names=("FLASH_ATTN", "TRITON_ATTN")) -> None:
    """Fail loudly if the simulation could only ever reach the SDPA fallback."""
    enum = backend_enum()
    broken = {n: kernel_import_error(n) for n in names if hasattr(enum, n)}  # 0.10.2 has no TRITON_ATTN
    broken = {n: why for n, why in broken.items() if why}
    if broken:
        raise SimulationDegraded(
            "simulated selection would degrade to TORCH_SDPA: vLLM's kernel backends do not import "
            f"on this machine ({'; '.join(f'{n}: {w}' for n, w in broken.items())})")


# ---- the platforms ---------------------------------------------------------------

def _cuda_class(facts: PlatformFacts) -> type:
    cuda = _import_with_stubs("vllm.platforms.cuda", ("vllm._C", "vllm._C_stable_libtorch"))
    from vllm.platforms.interface import DeviceCapability

    cap = None if facts.capability is None else DeviceCapability(*facts.capability)

    class SimulatedCudaPlatform(cuda.CudaPlatformBase):
        @classmethod
        def get_device_capability(cls, device_id: int = 0):
            return cap

    return SimulatedCudaPlatform


def _fake_props(arch: str):
    def get_device_properties(device=None):
        return types.SimpleNamespace(gcnArchName=arch, name=f"AMD {arch}", major=9, minor=4,
                                     total_memory=64 << 30, multi_processor_count=304)
    return get_device_properties


def _rocm_module(p: _Patches, arch: str) -> types.ModuleType:
    import torch

    return _import_with_stubs(
        "vllm.platforms.rocm", before=lambda q: q.attr(torch.cuda, "get_device_properties", _fake_props(arch)))


def _rocm_platform(p: _Patches, facts: PlatformFacts):
    import torch

    arch = facts.arch or "gfx942"
    rocm = _rocm_module(p, arch)
    # 0.11.x reads the arch from torch on every (cached) call; 0.17+ once at import
    # into module constants, recomputed here with the release's own expressions.
    p.attr(torch.cuda, "get_device_properties", _fake_props(arch))
    src = open(rocm.__file__).read()
    if "_GCN_ARCH" in rocm.__dict__:
        ns = dict(rocm.__dict__, _GCN_ARCH=arch)
        p.attr(rocm, "_GCN_ARCH", arch)
        for name, expr in re.findall(r"^(_ON_\w+) = (.+)$", src, flags=re.M):
            ns[name] = eval(expr, ns)  # noqa: S307 - the release's own source line
            p.attr(rocm, name, ns[name])
    cached = [f for f in vars(rocm).values() if callable(getattr(f, "cache_clear", None))]
    for f in cached:
        f.cache_clear()
    p.undo.append(lambda: [f.cache_clear() for f in cached])
    platform = rocm.RocmPlatform()

    # flash_attn / Triton-AMD presence: find_spec is imported at call time.
    real_find_spec = importlib.util.find_spec
    present = {"flash_attn": facts.flash_attn_pkg or facts.triton_amd,
               "flash_attn.flash_attn_triton_amd": facts.triton_amd,
               "aiter.ops.triton._triton_kernels.flash_attn_triton_amd": False}

    def find_spec(name, package=None):
        if name in present:
            return importlib.machinery.ModuleSpec(name, None) if present[name] else None
        return real_find_spec(name, package)

    p.attr(importlib.util, "find_spec", find_spec)
    p.env("FLASH_ATTENTION_TRITON_AMD_ENABLE", "TRUE" if facts.triton_amd else None)

    # AITER: found, enabled, MHA enabled; its own arch test runs unchanged. Up to 0.11.0
    # rocm.py reads the switches from vllm.envs (VLLM_ROCM_USE_AITER, ..._MHA) itself.
    for var in ("VLLM_ROCM_USE_AITER", "VLLM_ROCM_USE_AITER_MHA"):
        p.env(var, "1" if facts.aiter else "0")
    try:
        aiter = importlib.import_module("vllm._aiter_ops")
    except ImportError:
        return platform
    p.attr(aiter, "IS_AITER_FOUND", facts.aiter)
    p.attr(aiter, "current_platform", platform)
    ops = aiter.rocm_aiter_ops
    p.attr(ops, "_AITER_ENABLED", facts.aiter)
    p.attr(ops, "_MHA_ENABLED", facts.aiter)
    return platform


def _xpu_platform(p: _Patches, facts: PlatformFacts):
    stubs = ("vllm_xpu_kernels", "vllm_xpu_kernels._C", "vllm_xpu_kernels._moe_C", "vllm_xpu_kernels._xpu_C")
    xpu = _import_with_stubs("vllm.platforms.xpu", stubs)
    return xpu.XPUPlatform()


def tpu_selection() -> str | None:
    """Why the installed vLLM has no TPU platform class that selects vision attention
    (None: it has one). Read from the source, without importing it."""
    spec = importlib.util.find_spec("vllm.platforms")
    path = os.path.join(os.path.dirname(spec.origin), "tpu.py") if spec and spec.origin else ""
    if not os.path.exists(path):
        return "this vLLM has no vllm/platforms/tpu.py"
    if "def get_vit_attn_backend" not in open(path).read():
        return ("this release's TPU platform class does not select vision attention (vllm/platforms/tpu.py "
                "defines no get_vit_attn_backend: in tree only in 0.13.0; later TPU support is tpu_inference's)")
    return None


def _tpu_platform(p: _Patches, facts: PlatformFacts):
    # 0.13.0's tpu.py imports tpu_info (absent here) at the top: an empty stand-in during the import
    if "vllm.platforms.tpu" not in sys.modules and importlib.util.find_spec("tpu_info") is None:
        p.item(sys.modules, "tpu_info", types.SimpleNamespace(device=types.SimpleNamespace()))
    return importlib.import_module("vllm.platforms.tpu").TpuPlatform()


def _cpu_platform(facts: PlatformFacts):
    if facts.kind == "cpu":
        return importlib.import_module("vllm.platforms.cpu").CpuPlatform()
    return importlib.import_module("vllm.platforms.interface").UnspecifiedPlatform()


def _kernels(p: _Patches, facts: PlatformFacts) -> None:
    """Backends the facts say do not import raise ImportError from get_class()."""
    enum = _backend_enum()
    for name in ("FLASH_ATTN", "TRITON_ATTN"):
        if name not in facts.kernels and facts.kind == "cuda" and hasattr(enum, name):
            p.item(sys.modules, _backend_module(getattr(enum, name)), None)
    try:
        fa = importlib.import_module("vllm.v1.attention.backends.flash_attn")
    except ImportError:
        return
    if hasattr(fa, "is_fa_version_supported"):
        real = fa.is_fa_version_supported
        p.attr(fa, "is_fa_version_supported", lambda v: facts.fa4 if v == 4 else real(v))


@contextlib.contextmanager
def simulate(facts: PlatformFacts, module: types.ModuleType | None = None) -> Iterator[Any]:
    """vLLM's platform for ``facts`` (its real class), installed as
    ``module.current_platform`` when a module is given; undone on exit."""
    _vllm_setup()
    if facts.kind == "cuda":
        assert_kernels_import()
    p = _Patches()
    try:
        if facts.kind == "cuda":
            platform = _cuda_class(facts)()
        elif facts.kind == "rocm":
            platform = _rocm_platform(p, facts)
        elif facts.kind == "xpu":
            platform = _xpu_platform(p, facts)
        elif facts.kind == "tpu":
            platform = _tpu_platform(p, facts)
        else:
            platform = _cpu_platform(facts)
        _kernels(p, facts)
        p.env("VLLM_ATTENTION_BACKEND", None)  # 0.11.x reads it first; the contract ignores it
        if module is not None:
            p.attr(module, "current_platform", platform)
        yield platform
    finally:
        p.close()


def snapshot(module: types.ModuleType | None = None) -> dict:
    """What :func:`simulate` touches, to verify that nothing leaks."""
    import torch

    out = {"find_spec": importlib.util.find_spec, "get_device_properties": torch.cuda.get_device_properties,
           "env": {k: os.environ.get(k) for k in ("VLLM_ATTENTION_BACKEND", "FLASH_ATTENTION_TRITON_AMD_ENABLE",
                                                   "VLLM_ROCM_USE_AITER", "VLLM_ROCM_USE_AITER_MHA")},
           "modules": {k: sys.modules.get(k, _MISSING) for k in (
               "vllm._C", "vllm._C_stable_libtorch", "vllm_xpu_kernels",
               "vllm.v1.attention.backends.flash_attn", "vllm.v1.attention.backends.triton_attn")}}
    if module is not None:
        out["current_platform"] = getattr(module, "current_platform", None)
    aiter = sys.modules.get("vllm._aiter_ops")
    if aiter is not None:
        out["aiter"] = (aiter.IS_AITER_FOUND, aiter.current_platform, aiter.rocm_aiter_ops._AITER_ENABLED,
                        aiter.rocm_aiter_ops._MHA_ENABLED)
    rocm = sys.modules.get("vllm.platforms.rocm")
    if rocm is not None:
        out["rocm"] = {k: v for k, v in vars(rocm).items() if k.startswith("_ON_") or k == "_GCN_ARCH"}
    fa = sys.modules.get("vllm.v1.attention.backends.flash_attn")
    if fa is not None:
        out["fa4"] = getattr(fa, "is_fa_version_supported", None)
    return out


def call_platform(platform, head_size: int, dtype, override: Any = None):
    """The platform method itself, in the release's form."""
    import inspect

    fn = platform.get_vit_attn_backend
    params = inspect.signature(fn).parameters
    if "support_fa" in params:  # <= 0.10.2: (support_fa=False), as vision.py's own call makes it
        if override is not None:
            raise TypeError("this release's platform method takes no override")
        return fn()
    if "backend" in params:
        return fn(head_size, dtype, backend=override)
    if override is not None:
        raise TypeError("this release's platform method takes no override")
    return fn(head_size, dtype)


def real_cuda_facts() -> PlatformFacts:
    """The facts of this machine's CUDA device (GPU tests only)."""
    import torch

    kernels = frozenset(n for n in ("FLASH_ATTN", "TRITON_ATTN", "FLASHINFER") if kernel_import_error(n) is None)
    if importlib.util.find_spec("xformers") is not None:
        kernels |= {"XFORMERS"}
    fa4 = False
    try:
        from vllm.v1.attention.backends.fa_utils import is_fa_version_supported
        fa4 = bool(is_fa_version_supported(4))
    except Exception:  # noqa: BLE001
        pass
    return PlatformFacts("cuda", capability=tuple(torch.cuda.get_device_capability()), kernels=kernels,
                         fa4=fa4)


# ---- the simulated-platform checks' plumbing -------------------------------------
#
# Used by conformance/records/backend.py: what a drawn query becomes for a target
# (prepare, in the controller), and the call under the simulated platform (where
# the target lives).

def prepare_simulated(ctx: Ctx, ex: dict) -> dict:
    """The example with the override picked (among the backends the contract lists); or why not.
    Every release is simulated: its own platform classes decide."""
    if not ctx.target.facts.get("current_platform"):
        raise Unsupported(f"{ctx.target.name} has no module-level current_platform to install a simulated "
                          "platform through")
    facts = ex["facts"]
    if facts.kind == "tpu" and ctx.target.facts.get("tpu_selection"):
        raise Unsupported(ctx.target.facts["tpu_selection"])
    out = dict(ex)
    pick = ex.get("attn_backend_override")
    if isinstance(pick, OverridePick):
        out["attn_backend_override"] = pick.resolve(vision_backends(facts))
    override = out.get("attn_backend_override")
    if override is not None and not (facts.override_source == "argument" and ctx.target.facts.get("private_backend")):
        why = adapter.refusal("get_vit_attn_backend", ctx.target.forms, out)
        if why:
            raise NotApplicable(why)
    return out


def simulated_call(view, facts, head_size, dtype, override) -> dict:
    """The target through its vision function (the override from the argument or
    the multimodal config, as the facts say), and, for vLLM itself, through the
    platform method. Runs where the target lives."""
    module = view.module
    kwargs = {"head_size": head_size, "dtype": dtype, "attn_backend_override": override}
    private = getattr(module, "_get_vit_attn_backend", None)
    enum_cls = adapter.backend_enum(module)
    # The name becomes the release's enum member inside the call, as a user's code
    # would convert it: a name the release does not know (XFORMERS in 0.33.0, whose
    # enum raises ValueError for it) is then that call's outcome, not a harness error.
    with simulate(facts, module) as platform:
        if override is not None and facts.override_source == "argument" and private is not None:
            got = view.invoke(lambda: private(head_size, dtype,
                                              attn_backend_override=adapter.to_enum(enum_cls, override)))
        else:
            got = view.call(view.function, kwargs)
        direct = None
        if view.target.kind == "vllm" and (override is None or private is not None):
            direct = view.invoke(lambda: call_platform(platform, head_size, dtype,
                                                       adapter.to_enum(enum_cls, override)))
    return {"got": got, "direct": direct}


def reference_call(view, ex: dict):
    """The reference under the simulated platform of ``ex["facts"]`` (the probe run on the reference)."""
    kwargs = {k: ex[k] for k in ("head_size", "dtype", "attn_backend_override")}
    with use_platform(ex["facts"]):
        return view.call(view.function, kwargs)
