"""Hostile candidates: each does one thing a harness must survive (see tests/meta/test_hostile.py)."""
