"""One generic test, parametrized by the plugin over target x function x check."""

from vllm_vision_conformance.conformance.session import run_case


def test_conformance(conformance_case, request):
    run_case(request.config, conformance_case, request.node)
