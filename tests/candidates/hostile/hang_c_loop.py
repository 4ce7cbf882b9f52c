"""Loops forever inside C code, where no Python signal handler runs."""
import itertools


def get_load_balance_assignment(sizes, num_gpus=2):
    return sum(itertools.count())
