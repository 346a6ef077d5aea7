"""``clust db upgrade`` and ``clust db current``, run as ``python -m clust`` in a subprocess."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clust import Store
from clust.store.engine import make_engine
from clust.store.migrate import HEAD_REVISION, current_revision


def clust_command(*args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m clust ARGS``; ``CLUST_DATABASE_URL`` is ``database_url`` or unset."""
    env = {key: value for key, value in os.environ.items() if key != "CLUST_DATABASE_URL"}
    if database_url is not None:
        env["CLUST_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "clust", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def revision_of(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    """Exit status 1 and a one-line ``clust: ...`` message, no traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("clust: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_upgrade_then_current(db_url: str) -> None:
    before = clust_command("db", "current", "--url", db_url)
    assert before.returncode == 0, before.stderr
    assert before.stdout.startswith("none"), before.stdout
    assert f"newest is {HEAD_REVISION}" in before.stdout
    assert revision_of(db_url) is None  # `current` only looks

    upgraded = clust_command("db", "upgrade", "--url", db_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stderr == ""
    assert HEAD_REVISION in upgraded.stdout
    assert revision_of(db_url) == HEAD_REVISION

    current = clust_command("db", "current", "--url", db_url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == f"{HEAD_REVISION} (current)"

    again = clust_command("db", "upgrade", "--url", db_url)  # already there: no-op
    assert again.returncode == 0, again.stderr

    with Store(db_url, upgrade=False) as store:  # the schema a Store expects
        assert store.list_conversations() == []


def test_upgrade_to_a_named_revision(db_url: str) -> None:
    result = clust_command("db", "upgrade", "--url", db_url, HEAD_REVISION)
    assert result.returncode == 0, result.stderr
    assert revision_of(db_url) == HEAD_REVISION


def test_database_url_from_the_environment(db_url: str) -> None:
    upgraded = clust_command("db", "upgrade", database_url=db_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert revision_of(db_url) == HEAD_REVISION
    current = clust_command("db", "current", database_url=db_url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == f"{HEAD_REVISION} (current)"
    # --url wins over the environment.
    overridden = clust_command("db", "current", "--url", db_url, database_url="not a url")
    assert overridden.returncode == 0, overridden.stderr
    assert overridden.stdout.strip() == f"{HEAD_REVISION} (current)"


@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_missing_url_is_a_clear_error(command: str) -> None:
    result = clust_command("db", command)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr, result.stderr
    assert "--url" in result.stderr
    assert "CLUST_DATABASE_URL" in result.stderr


def test_unknown_revision_is_a_one_line_error(db_url: str) -> None:
    result = clust_command("db", "upgrade", "--url", db_url, "no-such-revision")
    assert_clean_failure(result)
    assert "no-such-revision" in result.stderr
    assert revision_of(db_url) is None


def test_no_command_is_a_usage_error() -> None:
    result = clust_command()
    assert result.returncode == 2
    assert "usage: clust" in result.stderr


_PSYCOPG2_MISSING = importlib.util.find_spec("psycopg2") is None


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("not a url", id="unparsable"),
        pytest.param("postgresql+nosuchdriver://user@localhost/db", id="unknown-driver"),
        pytest.param(
            "sqlite:///{tmp}/no/such/dir/chat.db",
            id="sqlite-unopenable",
        ),
        pytest.param(
            "postgresql+psycopg://postgres@127.0.0.1:1/test",
            id="postgres-refused",
        ),
        pytest.param(
            "postgresql://postgres@127.0.0.1:1/test",
            id="driver-not-installed",
            marks=pytest.mark.skipif(not _PSYCOPG2_MISSING, reason="psycopg2 is installed here"),
        ),
    ],
)
def test_bad_url_is_a_one_line_error(url: str, tmp_path: Path) -> None:
    result = clust_command("db", "upgrade", "--url", url.format(tmp=tmp_path))
    assert_clean_failure(result)


def test_upgrade_reports_the_revision_reached(db_url: str) -> None:
    assert clust_command("db", "upgrade", "--url", db_url).returncode == 0
    result = clust_command("db", "upgrade", "--url", db_url, "base")
    assert revision_of(db_url) == HEAD_REVISION  # nothing moved...
    assert "at base" not in result.stdout  # ...so the message must not say it did
