"""The test suite's pytest set-up lives in the package's pytest plugin (tinygrad_rep/testing/plugin.py:
hypothesis profiles dev / ci / thorough chosen by TINYGRAD_REP_HYPOTHESIS_PROFILE or --tr-profile,
--tr-backend, warm-up, tracebacks without the library's inner frames: --tr-full-trace shows them). An installed package registers it as a pytest11 entry
point; naming it here as well makes a source checkout work too (pytest loads a plugin once per name,
and both ways use the module's name). Expensive tests cap their example count below the profile's
with `helpers.capped(n)`."""

pytest_plugins = ["tinygrad_rep.testing.plugin"]
