"""``clust db`` takes ``--db`` like the other subcommands (``--url`` is covered by
``tests/store/test_cli.py``), and never falls back to the default database."""

from __future__ import annotations

from pathlib import Path

from cli.cli_support import assert_one_line_failure, clean_env, clust

from clust.store.migrate import HEAD_REVISION


def test_db_option_alias(tmp_path: Path, db_url: str) -> None:
    env = clean_env(tmp_path)
    upgraded = clust("db", "upgrade", "--db", db_url, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    current = clust("db", "current", "--db", db_url, env=env)
    assert current.stdout.strip() == f"{HEAD_REVISION} (current)"


def test_no_default_database_for_migrations(tmp_path: Path) -> None:
    result = clust("db", "upgrade", env=clean_env(tmp_path))
    line = assert_one_line_failure(result, code=2)
    assert "--url" in line and "CLUST_DATABASE_URL" in line
    assert not (tmp_path / "xdg" / "clust").exists()
