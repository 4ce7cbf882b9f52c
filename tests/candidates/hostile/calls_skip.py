"""Calls pytest.skip() (and pytest.exit) from inside the code under test."""
import pytest


def get_load_balance_assignment(sizes, num_gpus=2):
    pytest.skip("nothing to see here")


def get_num_selected_vision_tokens(num_vision_tokens, strategy):
    pytest.exit("stop the run", returncode=0)
