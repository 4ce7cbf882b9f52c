"""Closes stdout and stderr (the Python objects and the file descriptors), then returns a list, not a tuple."""
import os
import sys

from vllm_vision_conformance import reference


def get_load_balance_assignment(sizes, num_gpus=2):
    sys.stdout.close()
    sys.stderr.close()
    for fd in (1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    return list(reference.get_load_balance_assignment(sizes, num_gpus))
