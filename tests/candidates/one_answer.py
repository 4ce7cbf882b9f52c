"""A candidate that is the reference but for one answer: ``get_load_balance_assignment``
of ``[7, 7, 7, 7]`` on 3 ranks (an edge example of the corpus) puts every image on rank 0."""
from vllm_vision_conformance.reference import *  # noqa: F401,F403
from vllm_vision_conformance.reference import get_load_balance_assignment as _reference


def get_load_balance_assignment(sizes, num_gpus=2):
    if list(sizes) == [7, 7, 7, 7] and num_gpus == 3:
        return [0, 1, 2, 3], [4, 0, 0], [28, 0, 0]
    return _reference(sizes, num_gpus)
