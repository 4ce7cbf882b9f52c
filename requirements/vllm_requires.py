"""Write a vLLM release's own bounds on the shared dependencies, as a constraints file.

Why: vLLM is installed with ``--no-deps``, so its requirements on the packages of
``requirements/vllm-cpu.txt`` are not seen by the resolver, which may then pick
releases vLLM does not support (uv chose mistral_common 1.9.1 for vLLM 0.33.0, which
asks for >=1.11.6: every Pixtral check failed on ``mistral_common.guidance``). Each
release env therefore gets ``-c requirements/vllm-requires/X.txt``: vLLM X's
``Requires-Dist`` lines for those packages (extras dropped; torch, torchvision,
transformers and triton are left to tox.ini and cpu-constraints.txt).

How: ``python requirements/vllm_requires.py [DIST-INFO/METADATA]`` prints the file for
the vLLM installed in this interpreter (or that METADATA file), e.g. in a release env:
``.tox/vllm-X/bin/python requirements/vllm_requires.py > requirements/vllm-requires/X.txt``.
"""

from __future__ import annotations

import email
import importlib.metadata
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
LEFT_TO_TOX = {"torch", "torchvision", "transformers", "triton"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def shared_names(path: pathlib.Path = HERE / "vllm-cpu.txt") -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(canonical(re.split(r"[\s\[<>=!~;]", line, 1)[0]))
    return names - LEFT_TO_TOX


def constraints(requires: list[str], names: set[str]) -> list[str]:
    """The lines of REQUIRES (``Requires-Dist`` values) for NAMES, no extras, none of an extra."""
    out = []
    for req in requires:
        spec, _, marker = req.partition(";")
        if "extra ==" in marker or "extra==" in marker:
            continue
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*\(?([^)]*)\)?\s*$", spec)
        if not m or canonical(m.group(1)) not in names:
            continue
        line = canonical(m.group(1)) + m.group(3).replace(" ", "")
        out.append(f"{line} ; {marker.strip()}" if marker.strip() else line)
    return sorted(out)


def main(argv: list[str]) -> int:
    if argv:
        meta = email.message_from_string(pathlib.Path(argv[0]).read_text())
        requires, version = meta.get_all("Requires-Dist") or [], meta["Version"]
    else:
        dist = importlib.metadata.distribution("vllm")
        requires, version = dist.requires or [], dist.version
    print(f"# vLLM {version}'s own bounds on the shared dependencies (requirements/vllm_requires.py)")
    for line in constraints(requires, shared_names()):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
