"""Dereferences a null pointer: the process dies of SIGSEGV."""
import ctypes


def get_load_balance_assignment(sizes, num_gpus=2):
    return ctypes.string_at(0)
