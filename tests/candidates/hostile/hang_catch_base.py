"""Loops forever and swallows everything, BaseException included (an in-process alarm cannot stop it)."""
import time


def get_load_balance_assignment(sizes, num_gpus=2):
    while True:
        try:
            time.sleep(0.01)
        except BaseException:  # noqa: BLE001
            pass
