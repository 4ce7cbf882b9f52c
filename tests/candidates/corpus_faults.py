"""A candidate that is the reference but for two corpus inputs of ``get_load_balance_assignment``
(edge examples of its property-agrees): ``[7, 7, 7, 7]`` on 3 ranks kills its process,
``[5]`` on 4 ranks never returns."""
import os
import time

from vllm_vision_conformance.reference import *  # noqa: F401,F403
from vllm_vision_conformance.reference import get_load_balance_assignment as _reference


def get_load_balance_assignment(sizes, num_gpus=2):
    if list(sizes) == [7, 7, 7, 7] and num_gpus == 3:
        os._exit(3)
    if list(sizes) == [5] and num_gpus == 4:
        while True:
            time.sleep(1)
    return _reference(sizes, num_gpus)
