"""Settings for the code under test in this process, given explicitly: the environment is left
alone (the processes a test starts get theirs through their own environment).

    configure(MAX_BODY_BYTES="1000")      # as if the variable were set; None unsets one

The names and values are the environment's, read by the same parser (core/settings.py), on top
of the settings in use. An autouse fixture (tests/conftest.py) goes back to the environment's
settings after each test.
"""

from __future__ import annotations

from modelstats.core import settings


def configure(**variables: str | None) -> settings.Settings:
    env = dict(settings.get_settings().extra)
    for name, value in variables.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    chosen = settings.from_environment(env)
    settings.use(chosen)
    return chosen
