"""``python -m vllm_vision_conformance``: the ``vllm-vision-conformance`` command."""
from vllm_vision_conformance.conformance.cli import main

raise SystemExit(main())
