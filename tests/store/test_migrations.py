"""The Alembic migrations and the SQLAlchemy models agree, and upgrades are safe to run.

Every test runs on an SQLite file and on PostgreSQL (the ``db_url`` fixture).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.dialects.postgresql import JSONB

import clust.store
from clust import Store
from clust.messages import StoreError
from clust.store.engine import WRITE, make_engine
from clust.store.migrate import HEAD_REVISION, MIGRATIONS, VERSION_TABLE, current_revision
from clust.store.migrate import upgrade as upgrade_schema
from clust.store.schema import Base

MODEL = "claude-sonnet-5-5"
STORE_TABLES = set(Base.metadata.tables)


def _only_clust_tables(name: str | None, type_: str, _parents: Any) -> bool:
    if type_ == "table":
        return name is not None and name.startswith("clust_")
    return True


def schema_diff(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": VERSION_TABLE,
                "target_metadata": Base.metadata,
                "include_name": _only_clust_tables,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        diff = compare_metadata(context, Base.metadata)
        connection.rollback()
    return list(diff)


def diff_kinds(diff: list[Any]) -> set[str]:
    # Items are (kind, ...) tuples, or lists of them for column modifications.
    return {item[0][0] if isinstance(item, list) else item[0] for item in diff}


def clust_tables(connection: Connection) -> set[str]:
    return {name for name in inspect(connection).get_table_names() if name.startswith("clust_")}


def alembic_config(connection: Connection) -> Config:
    """The configuration ``clust.store.migrate`` uses, for commands it does not wrap."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# -- models and migrations agree ---------------------------------------------------------


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    with Store(db_url) as store:
        assert schema_diff(store.engine) == []
        with store.engine.connect() as connection:
            assert clust_tables(connection) == STORE_TABLES | {VERSION_TABLE}
            assert current_revision(connection) == HEAD_REVISION
            columns = {c["name"]: c for c in inspect(connection).get_columns("clust_conversations")}
            if connection.dialect.name == "postgresql":
                # JSON columns are JSONB on PostgreSQL (compare_type checks it too).
                for name in ("params", "system", "tools", "metadata"):
                    assert isinstance(columns[name]["type"], JSONB), name
            message_columns = inspect(connection).get_columns("clust_messages")
            wire = next(c for c in message_columns if c["name"] == "wire")
            # Text, not JSONB: history is spliced back byte for byte.
            assert not isinstance(wire["type"], JSONB)


def test_autogenerate_comparison_notices_drift(db_url: str) -> None:
    """The comparison above is not vacuous: real drift shows up."""
    with Store(db_url) as store:
        with store.engine.connect().execution_options(**WRITE) as connection, connection.begin():
            connection.execute(text("DROP INDEX ix_clust_usage_started"))
            connection.execute(text("ALTER TABLE clust_messages ADD COLUMN extra INTEGER"))
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text(
                        "ALTER TABLE clust_conversations "
                        "ALTER COLUMN params TYPE json USING params::json"
                    )
                )
        diff = schema_diff(store.engine)
        kinds = diff_kinds(diff)
        assert {"add_index", "remove_column"} <= kinds, diff
        if store.engine.dialect.name == "postgresql":
            assert "modify_type" in kinds, diff


def test_head_revision_is_the_newest_script() -> None:
    assert Path(clust.store.__file__).parent / "migrations" == MIGRATIONS
    scripts = ScriptDirectory(str(MIGRATIONS))
    assert scripts.get_heads() == [HEAD_REVISION]
    assert len(scripts.get_bases()) == 1
    # One straight line of revisions from the base to the head.
    chain = [script.revision for script in scripts.walk_revisions()]
    assert chain[0] == HEAD_REVISION
    assert len(chain) == len(set(chain))


# -- opening without upgrading ----------------------------------------------------------


def test_store_without_upgrade_refuses_an_empty_database(db_url: str) -> None:
    with pytest.raises(StoreError, match=r"clust db upgrade"):
        Store(db_url, upgrade=False)
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert clust_tables(connection) == set()  # nothing was created
    finally:
        engine.dispose()


def test_refused_store_closes_its_connections(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("open connections are counted with PostgreSQL's pg_stat_activity")
    name = f"clust_{uuid.uuid4().hex[:12]}"
    with pytest.raises(StoreError) as refused:
        Store(f"{db_url}&application_name={name}", upgrade=False)
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            count = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name},
            ).scalar()
    finally:
        engine.dispose()
    assert refused.value is not None  # still held, as a caller handling the error would
    assert count == 0


# -- downgrade and upgrade again ---------------------------------------------------------


def test_downgrade_to_base_then_upgrade(db_url: str) -> None:
    with Store(db_url) as store:
        store.create_conversation(model=MODEL, max_tokens=16)
        with store.engine.connect().execution_options(**WRITE) as connection, connection.begin():
            command.downgrade(alembic_config(connection), "base")
        with store.engine.connect() as connection:
            assert current_revision(connection) is None
            assert clust_tables(connection) <= {VERSION_TABLE}

    with pytest.raises(StoreError, match=r"clust db upgrade"):
        Store(db_url, upgrade=False)

    engine = make_engine(db_url)
    try:
        upgrade_schema(engine, HEAD_REVISION)
        with engine.connect() as connection:
            assert current_revision(connection) == HEAD_REVISION
        assert schema_diff(engine) == []
    finally:
        engine.dispose()

    with Store(db_url, upgrade=False) as store:
        assert store.list_conversations() == []
        conversation = store.create_conversation(model=MODEL, max_tokens=16, title="again")
        assert store.get_conversation(conversation.id).title == "again"


# -- concurrent first opens --------------------------------------------------------------

_OPENER = """
import sys
import uuid

# Imported before the start signal, so the processes reach the lock together.
import alembic.command
import alembic.config
import alembic.runtime.migration
import sqlalchemy.dialects.postgresql
import sqlalchemy.dialects.sqlite

from clust import Store

print("ready", flush=True)
sys.stdin.readline()  # all processes start together
with Store(sys.argv[1]) as store:
    store.create_conversation(model="claude-sonnet-5-5", max_tokens=8)
print("opened", flush=True)
"""


def test_processes_opening_a_new_database_at_once(db_url: str) -> None:
    """Four processes upgrade the same empty database at the same moment: they take
    turns (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), and the
    later ones find the schema already there."""
    env = {key: value for key, value in os.environ.items() if key != "CLUST_DATABASE_URL"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes = [process.communicate(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (out, err) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0, err
        assert out.strip() == "opened", (out, err)

    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert clust_tables(connection) == STORE_TABLES | {VERSION_TABLE}
            versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
            assert [tuple(row) for row in versions] == [(HEAD_REVISION,)]
            count = connection.execute(text("SELECT count(*) FROM clust_conversations")).scalar()
            assert count == 4
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


# -- sharing a database with an application ---------------------------------------------


def test_application_alembic_version_table_is_left_alone(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect().execution_options(**WRITE) as connection, connection.begin():
            connection.execute(
                text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
            )
            connection.execute(text("INSERT INTO alembic_version VALUES ('app0042')"))
            connection.execute(text("CREATE TABLE app_items (id INTEGER PRIMARY KEY)"))

        with Store(db_url) as store:
            store.create_conversation(model=MODEL, max_tokens=16)
            assert schema_diff(store.engine) == []

        with engine.connect() as connection:
            names = set(inspect(connection).get_table_names())
            assert {"alembic_version", "app_items"} | STORE_TABLES | {VERSION_TABLE} <= names
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            assert [tuple(row) for row in rows] == [("app0042",)]
            # The application's own Alembic still sees its revision, clust sees its own.
            assert MigrationContext.configure(connection).get_current_revision() == "app0042"
            assert current_revision(connection) == HEAD_REVISION

        # Taking the clust schema down leaves the application's tables alone too.
        with engine.connect().execution_options(**WRITE) as connection, connection.begin():
            command.downgrade(alembic_config(connection), "base")
        with engine.connect() as connection:
            names = set(inspect(connection).get_table_names())
            assert {"alembic_version", "app_items"} <= names
            assert not names & STORE_TABLES
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            assert [tuple(row) for row in rows] == [("app0042",)]
    finally:
        engine.dispose()
