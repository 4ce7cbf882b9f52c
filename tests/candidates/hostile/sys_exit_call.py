"""Calls sys.exit(0) from inside a call."""
import sys


def get_load_balance_assignment(sizes, num_gpus=2):
    sys.exit(0)
