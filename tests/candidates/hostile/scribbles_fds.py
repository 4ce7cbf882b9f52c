"""Writes a forged frame into every socket it can find among its file descriptors
(a harness that let a target hold another target's connection would read it there)."""
import os
import stat


def get_load_balance_assignment(sizes, num_gpus=2):
    for fd in range(3, 1024):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, b"\x00\x00\x00\x04junk")
        except OSError:
            pass
    return ([], [0] * num_gpus, [0] * num_gpus)
