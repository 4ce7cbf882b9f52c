"""A candidate that raises in one function and returns the wrong type in another."""
from vllm_vision_conformance import reference


def get_num_selected_vision_tokens(num_vision_tokens, strategy):
    raise RuntimeError("boom")


def get_load_balance_assignment(sizes, num_gpus=2):
    return list(reference.get_load_balance_assignment(sizes, num_gpus))  # a list, not a tuple
