"""Returns the right assignment with floats where the indices and counts are ints."""
from vllm_vision_conformance import reference


def get_load_balance_assignment(sizes, num_gpus=2):
    order, counts, loads = reference.get_load_balance_assignment(sizes, num_gpus)
    return [float(i) for i in order], [float(c) for c in counts], loads
