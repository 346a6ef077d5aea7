"""A database connection lost between two sends (server restart, idle timeout, a
killed backend): the dead pooled connections are found when checked out and replaced,
so the next send (or read) just works and nothing is half-written. (A reply whose
connection is lost meanwhile: tests/store/test_faults_database.py.)

PostgreSQL only: the backends of the store's pooled connections are terminated from
another connection, found by their application name.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from clust import Client, Store
from clust.testing import FakeClaude

MODEL = "claude-sonnet-5-5"


@pytest.fixture
def pg_store(db_url: str) -> Iterator[tuple[Store, str]]:
    if not db_url.startswith("postgresql"):
        pytest.skip("terminates PostgreSQL backends")
    name = f"clust_lost_{uuid.uuid4().hex[:8]}"
    with Store(f"{db_url}&application_name={name}") as store:
        yield store, name


def kill_backends(store: Store, application_name: str) -> int:
    """Terminate the store's backends; return once they are gone (as after a restart)."""
    admin = create_engine(store.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": application_name},
            ).scalar()
            while connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": application_name},
            ).scalar():
                time.sleep(0.01)
    finally:
        admin.dispose()
    return int(killed or 0)


def test_send_after_the_connection_was_killed(
    pg_store: tuple[Store, str], client: Client, fake: FakeClaude
) -> None:
    store, name = pg_store
    conv = store.create_conversation(model=MODEL, max_tokens=32)
    conv.send(client, "first")
    assert kill_backends(store, name) >= 1

    requests_before = len(fake.requests)
    conv.send(client, "second")  # the dead connection is replaced at checkout
    assert len(fake.requests) == requests_before + 1
    assert [m.role.value for m in store.get_conversation(conv.id).history] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]


def test_history_read_after_the_connection_was_killed(
    pg_store: tuple[Store, str], client: Client
) -> None:
    store, name = pg_store
    conv = store.create_conversation(model=MODEL, max_tokens=32)
    conv.send(client, "first")
    reopened = store.get_conversation(conv.id)  # turns not read yet
    kill_backends(store, name)

    assert len(reopened.history) == 2


def test_a_lost_server_fails_no_send_whatever_its_pooled_connections(
    pg_store: tuple[Store, str], client: Client
) -> None:
    """Every dead pooled connection is replaced as it is checked out."""
    store, name = pg_store
    conv = store.create_conversation(model=MODEL, max_tokens=32)
    held = [store.engine.connect() for _ in range(4)]  # four connections in the pool
    for connection in held:
        connection.exec_driver_sql("SELECT 1")
        connection.close()
    assert kill_backends(store, name) >= 4

    conv.send(client, "first")
    conv.send(client, "second")
    assert [m.text() for m in store.get_conversation(conv.id).history][-2:] == [
        "second",
        "Echo: second",
    ]
