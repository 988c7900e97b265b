"""What every command shares: the database a command works on is given to the code under it
through the process's settings, not by writing the environment."""

from __future__ import annotations

import os

from modelstats.cli import base
from modelstats.core import settings
from modelstats.local.stack.state import StackState
from tests.configuration import configure

BROKER = "http://127.0.0.1:8080/modelstats/default"


def test_the_running_stacks_database_is_given_through_the_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    configure(DATABASE_URL=None)
    url = "postgresql://someone@127.0.0.1:5999/stack"
    # This process stands for the stack.
    StackState(os.getpid(), BROKER, url).write(tmp_path)
    assert base.find_database(str(tmp_path)) == url
    assert settings.get_settings().database_url == url
    assert "DATABASE_URL" not in os.environ


def test_database_url_in_the_settings_wins_over_the_stack(tmp_path):
    configure(DATABASE_URL="postgresql://mine@127.0.0.1/db")
    StackState(os.getpid(), BROKER, "postgresql://stack@127.0.0.1/db").write(tmp_path)
    assert base.find_database(str(tmp_path)) == "postgresql://mine@127.0.0.1/db"


def test_no_database_anywhere_is_none(tmp_path):
    configure(DATABASE_URL=None)
    assert base.find_database(str(tmp_path)) is None
