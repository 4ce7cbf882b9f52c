"""Raises KeyboardInterrupt from inside a call."""


def get_load_balance_assignment(sizes, num_gpus=2):
    raise KeyboardInterrupt
