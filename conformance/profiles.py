"""Hypothesis profiles of the suite: ``dev``, ``ci``, ``thorough``.

``ci`` is derandomized (the same examples every run, so a divergence replays
from the printed command), has no deadline and no example database, and runs
200 examples per property. Checks never pass settings of their own, so what a
profile says is what runs.
"""

from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    report_multiple_bugs=False,
)

settings.register_profile("dev", max_examples=50, **_COMMON)
settings.register_profile("ci", max_examples=200, derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)

PROFILES = ("dev", "ci", "thorough")
