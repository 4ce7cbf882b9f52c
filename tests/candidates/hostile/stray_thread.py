"""Starts a non-daemon thread that never ends (at import and in every call), and returns a list, not a tuple."""
import threading
import time

from vllm_vision_conformance import reference


def _forever():
    while True:
        time.sleep(0.05)


threading.Thread(target=_forever, daemon=False).start()


def get_load_balance_assignment(sizes, num_gpus=2):
    threading.Thread(target=_forever, daemon=False).start()
    return list(reference.get_load_balance_assignment(sizes, num_gpus))
