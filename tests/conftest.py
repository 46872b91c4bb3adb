"""Shared pytest setup: hypothesis profiles.

Profiles (choose with env TINYGRAD_REP_HYPOTHESIS_PROFILE; CI=<anything> selects "ci"):
  dev       the default locally: few examples, quick feedback
  ci        moderate example counts, derandomized (the same examples on every run), no
            deadline (CI machines are noisy), failing examples printed as reproduction blobs
  thorough  many examples, for a long local run before a release
Expensive tests cap their example count below the profile's with `helpers.capped(n)`.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=10, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, print_blob=True,
                          database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])

_profile = os.environ.get("TINYGRAD_REP_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(_profile)


def pytest_report_header(config):
    return f"hypothesis profile: {_profile}"
