"""The suite's Hypothesis profiles: ``vvc-dev``, ``vvc-ci``, ``vvc-thorough``.

Registered only in a run of the suite (``conformance.session``), under names of
their own, and applied to the suite's own properties only (a ``settings``
decorator): Hypothesis's global settings, its built-in ``ci`` profile and a
project's own profiles are left as they are. Each is built on Hypothesis's
``default`` profile, so what is loaded globally (``CI=true`` loads Hypothesis's
``ci``) does not leak into the suite.

``vvc-ci`` (the default) is derandomized (the same examples every run, so a
divergence replays from the printed command), has no deadline and no example
database, and runs 200 examples per property. Checks never pass settings of
their own, so what a profile says is what runs.
"""

from hypothesis import HealthCheck, settings

PROFILES = {"dev": "vvc-dev", "ci": "vvc-ci", "thorough": "vvc-thorough"}  # short name -> registered name
DEFAULT = "ci"

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    report_multiple_bugs=False,
)


def register() -> None:
    base = settings.get_profile("default")
    settings.register_profile("vvc-dev", base, max_examples=50, **_COMMON)
    settings.register_profile("vvc-ci", base, max_examples=200, derandomize=True, database=None, print_blob=True,
                              **_COMMON)
    settings.register_profile("vvc-thorough", base, max_examples=2000, **_COMMON)


def choose(explicit: str | None, short: str | None) -> tuple[str, str | None]:
    """The profile the suite runs under, and a bad-input line (None: fine).

    ``explicit``: ``--hypothesis-profile`` (any registered name); ``short``: ``--vvc-profile``
    or ``VVC_PROFILE`` (dev, ci, thorough, or a registered name)."""
    accepted = f"accepted: {', '.join(PROFILES)} (or a profile registered by your own conftest " \
               "with --hypothesis-profile)"
    for flag, name in (("--hypothesis-profile", explicit), ("--profile", short)):
        if not name:
            continue
        name = PROFILES.get(name, name)
        try:
            settings.get_profile(name)
        except Exception:  # noqa: BLE001 - InvalidArgument: not registered
            return PROFILES[DEFAULT], f"{flag} {name!r}: no such profile; {accepted}"
        return name, None
    return PROFILES[DEFAULT], None


def short_name(name: str) -> str:
    """``vvc-ci`` -> ``ci``; any other registered name as it is."""
    return next((short for short, full in PROFILES.items() if full == name), name)


def replay_options(name: str) -> list[str]:
    """The CLI options that select this profile again."""
    short = short_name(name)
    return ["--profile", short] if short in PROFILES else ["--hypothesis-profile", name]
