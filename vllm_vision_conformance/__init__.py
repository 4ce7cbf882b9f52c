"""vllm-vision-conformance: a property-based conformance suite for vLLM's vision helpers.

Everything installs under this one name: ``vllm_vision_conformance.conformance``
(the harness, the pytest plugin, the CLI), ``vllm_vision_conformance.reference``
(the reference implementation) and ``vllm_vision_conformance.strategies`` (the
Hypothesis strategies). The repository keeps those three at its top level.
"""

import os as _os

# A source tree (PYTHONPATH pointing at a checkout): the subpackages lie beside this folder,
# not in it. An installed copy has them inside, and this adds nothing.
_here = _os.path.dirname(_os.path.abspath(__file__))
if not _os.path.isdir(_os.path.join(_here, "conformance")):
    __path__.append(_os.path.dirname(_here))  # noqa: F821 - a package's own __path__
del _here, _os
