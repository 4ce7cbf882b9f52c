"""A candidate whose load balancer loops forever: must be a divergence, not a hang."""
from vllm_vision_conformance.reference import get_num_selected_vision_tokens  # noqa: F401 - a correct one, to show results are kept


def get_load_balance_assignment(sizes, num_gpus=2):
    while True:
        pass
