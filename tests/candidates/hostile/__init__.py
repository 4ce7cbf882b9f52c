"""Hostile candidates: each does one thing a harness must survive (see tests/test_hostile.py)."""
