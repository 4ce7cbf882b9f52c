"""Make PyPI's torchvision importable beside the CPU build of torch.

Why: transformers 5 imports torchvision for Pixtral's image processor, and vLLM's
pixtral.py imports that module, so vLLM >= 0.24 cannot build the Pixtral encoder info
without torchvision. PyPI's torchvision wheel (0.28.0 for torch 2.13.0) is a CUDA build:
its ``_C.so`` needs ``libtorch_cuda.so``/``libc10_cuda.so``, which the CPU torch lacks.
torchvision tolerates a missing extension, except that ``_meta_registrations.py`` calls
``torch.library.register_fake`` for ``torchvision::nms`` and ``torchvision::qnms``, which
raises ``RuntimeError: operator torchvision::nms does not exist``. Defining those two
schemas (no kernels) first lets the pure-Python part import; calling the ops then raises
torchvision's own "Couldn't load custom C++ ops" error, as on any ops-less install.

How: ``python requirements/torchvision_cpu_shim.py --install`` (run by tox in
``commands_pre``) copies this file into the env's site-packages as
``_torchvision_cpu_shim.py`` and adds ``_torchvision_cpu_shim.pth``. At interpreter
start that only registers an import hook (torch is not imported then); the fix runs on the
first ``import torchvision``, and only when torchvision's extension fails to load, so a
CUDA torch with a matching torchvision is left untouched.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

_OPS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_keep = []  # keeps the torch.library.Library object (and its definitions) alive


def _define_missing_ops(extension_path: str) -> None:
    import torch

    try:
        torch.ops.load_library(extension_path)
        return  # the real extension loads: nothing to do
    except (ImportError, OSError):
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _OPS:
        try:
            lib.define(schema)
        except RuntimeError:  # already defined by someone else
            pass
    _keep.append(lib)


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torchvision")
        if spec is not None and spec.submodule_search_locations:
            ext = os.path.join(list(spec.submodule_search_locations)[0], "_C.so")
            if os.path.exists(ext):
                try:
                    _define_missing_ops(ext)
                except Exception:  # never break the import itself
                    pass
        return spec


def activate() -> None:
    if "torchvision" not in sys.modules and not any(
        isinstance(f, _Hook) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _Hook())


def _install() -> None:
    import shutil
    import sysconfig

    purelib = sysconfig.get_paths()["purelib"]
    shutil.copyfile(__file__, os.path.join(purelib, "_torchvision_cpu_shim.py"))
    with open(os.path.join(purelib, "_torchvision_cpu_shim.pth"), "w") as fh:
        fh.write("import _torchvision_cpu_shim; _torchvision_cpu_shim.activate()\n")
    print(f"torchvision CPU shim installed in {purelib}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--install"]:
        _install()
    else:
        sys.exit("usage: python torchvision_cpu_shim.py --install")
