"""Ignores SIGALRM, then loops forever."""
import signal


def get_load_balance_assignment(sizes, num_gpus=2):
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        pass
