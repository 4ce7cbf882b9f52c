"""Remove the extension modules of an installed package that need CUDA libraries.

Why: vLLM's wheels on PyPI are CUDA builds. Their extension modules (``vllm/_C*.so``,
``vllm/vllm_flash_attn/*.so``, ...) are 0.5-1.3 GB per release, and none of them can
load beside the CPU build of torch: each needs ``libcuda.so.1``, ``libcudart.so.*`` or
``libnvrtc.so.*`` (checked for every ``.so`` of 0.10.2, 0.11.2 and 0.33.0: every import
failed with that ``ImportError``). vLLM imports them inside ``try``/``except
ImportError``, so without the files it takes the same path (a ``ModuleNotFoundError``,
which is an ``ImportError``). Dropping them makes a release env about 1 GB smaller.

What: ``python drop_cuda_kernels.py [PACKAGE ...]`` (default ``vllm``) reads the ELF
dynamic section (``DT_NEEDED``) of every ``*.so`` under the installed package and
deletes those that need a CUDA library (``CUDA_LIBRARY``); the package's ``RECORD``
loses their lines, so an uninstall stays clean. A module that needs no CUDA library (a
CPU build of vLLM, a source tree built with ``VLLM_TARGET_DEVICE=empty``) is kept, and
so is a file that is not a 64-bit little-endian ELF (it is left to the import).
``VVC_KEEP_CUDA_KERNELS=1`` turns this off.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import os
import re
import struct
import sys

CUDA_LIBRARY = re.compile(
    r"^lib(cuda|cudart|nvrtc|nvrtc-builtins|torch_cuda|c10_cuda|cublas|cublasLt|cusparse|cusparseLt"
    r"|cusolver|cufft|curand|nccl|nvToolsExt|nvJitLink|cudnn|cupti)\.so(\.|$)")

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB = 0, 1, 5


def needed_libraries(path: str) -> list[str] | None:
    """The ``DT_NEEDED`` entries of a 64-bit little-endian ELF file; None if it is not one."""
    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return None
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        loads, dynamic = [], None
        for i in range(phnum):
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", table, i * phentsize)
            if p_type == _PT_LOAD:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == _PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            return []  # statically linked: needs nothing
        f.seek(dynamic[0])
        raw = f.read(dynamic[1])
        needed, strtab = [], None
        for off in range(0, len(raw) - 15, 16):
            tag, val = struct.unpack_from("<qQ", raw, off)
            if tag == _DT_NULL:
                break
            if tag == _DT_NEEDED:
                needed.append(val)
            elif tag == _DT_STRTAB:
                strtab = val
        if strtab is None:
            return [] if not needed else None
        base = next((o + strtab - v for v, o, n in loads if v <= strtab < v + n), None)
        if base is None:
            return None
        names = []
        for offset in needed:
            f.seek(base + offset)
            names.append(f.read(256).split(b"\0", 1)[0].decode("utf-8", "replace"))
        return names


def needs_cuda(path: str) -> bool:
    names = needed_libraries(path)
    return bool(names) and any(CUDA_LIBRARY.match(n) for n in names)


def drop(package: str) -> tuple[list[str], int]:
    """Delete the CUDA-only extension modules of installed ``package``: (paths, bytes)."""
    dist = importlib.metadata.distribution(package)
    root = os.path.abspath(str(dist.locate_file("")))
    removed, freed = [], 0
    for rel in [str(f) for f in dist.files or ()]:
        path = os.path.normpath(os.path.join(root, rel))
        if not rel.endswith(".so") or not os.path.isfile(path) or not needs_cuda(path):
            continue
        freed += os.path.getsize(path)
        os.unlink(path)
        removed.append(rel)
    if removed:
        record = os.path.join(root, str(next(f for f in dist.files if str(f).endswith("RECORD"))))
        with open(record, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and r[0] not in set(removed)]
        with open(record, "w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerows(rows)
    return removed, freed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("packages", nargs="*", default=["vllm"])
    args = p.parse_args(argv)
    if os.environ.get("VVC_KEEP_CUDA_KERNELS", "0") not in ("", "0"):
        return 0
    for package in args.packages:
        try:
            removed, freed = drop(package)
        except importlib.metadata.PackageNotFoundError:
            print(f"drop_cuda_kernels: {package} is not installed")
            continue
        print(f"drop_cuda_kernels: {package}: {len(removed)} extension modules that need CUDA removed "
              f"({freed / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
