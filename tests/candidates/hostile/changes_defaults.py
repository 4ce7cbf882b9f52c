"""Changes process-wide state at import (torch's default dtype and threads, the
RNG, an environment variable the others read) and returns a list, not a tuple."""
import os

import torch

from vllm_vision_conformance import reference

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)
torch.manual_seed(12345)
os.environ["VLLM_ATTENTION_BACKEND"] = "FLASH_ATTN"


def get_load_balance_assignment(sizes, num_gpus=2):
    return list(reference.get_load_balance_assignment(sizes, num_gpus))
