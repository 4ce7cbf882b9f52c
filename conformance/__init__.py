"""vllm-vision-conformance: the harness (targets, checks, plugin, report, CLI)."""
