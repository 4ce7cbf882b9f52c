"""A candidate that provides one name only (correctly): the rest is "not provided"."""
from vllm_vision_conformance.reference import get_load_balance_assignment  # noqa: F401
