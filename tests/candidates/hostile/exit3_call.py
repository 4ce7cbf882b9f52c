"""Ends its own process with status 3 from inside a call."""
import os


def get_load_balance_assignment(sizes, num_gpus=2):
    os._exit(3)
