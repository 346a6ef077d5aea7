"""Database faults: a billed reply is never dropped, the first operation after a
restart just works, and every fault the user can hit is a typed StoreError.

PostgreSQL faults are made for this test's connections only, never for the shared
server: a restart is simulated by terminating the backends of this store (found by
an ``application_name`` of its own), "database down" by a real TCP proxy in front of
the server that stops listening and cuts its connections, and a commit whose
acknowledgement was lost by that proxy forwarding a statement and dropping its answer.
The fault happens inside FakeClaude's responder: after the request arrived and before
the reply leaves, so the turn has begun and the reply is billed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from clust import AsyncClient, Client, Store
from clust.messages.errors import (
    DatabaseDriverMissing,
    DatabaseFull,
    DatabaseUnavailable,
    InvalidParameter,
    NothingToRetry,
    ReplyNotStored,
)
from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"


# -- helpers -----------------------------------------------------------------------------


def postgres_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL fault")


def admin_engine(db_url: str) -> Engine:
    """A connection of the test's own, straight to the server, to look at the rows."""
    return create_engine(db_url, isolation_level="AUTOCOMMIT")


def terminate(db_url: str, application_name: str) -> None:
    """Terminate this store's backends and wait until they are gone (a restart, as the
    store's pooled connections see it)."""
    admin = admin_engine(db_url)
    try:
        with admin.connect() as connection:
            pids = (
                connection.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": application_name},
                )
                .scalars()
                .all()
            )
            assert pids, "the store has no connection to terminate"
            for pid in pids:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 10
            while connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": list(pids)},
            ).scalar():
                assert time.monotonic() < deadline
                time.sleep(0.01)
    finally:
        admin.dispose()


def stored(db_url: str, conversation_id: str) -> tuple[list[tuple[str, str]], list[Any]]:
    """The conversation's turns (role, first text) and its ledger rows, read directly."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            turns = [
                (row.role, _text(row.wire))
                for row in connection.execute(
                    text(
                        "SELECT role, wire FROM clust_messages WHERE conversation_id = :id "
                        "ORDER BY position"
                    ),
                    {"id": conversation_id},
                )
            ]
            usage = connection.execute(
                text(
                    "SELECT outcome, message_position, input_tokens, output_tokens, "
                    "request_id, finished_at FROM clust_usage WHERE conversation_id = :id "
                    "ORDER BY id"
                ),
                {"id": conversation_id},
            ).all()
            lease = connection.execute(
                text("SELECT lease_holder FROM clust_conversations WHERE id = :id"),
                {"id": conversation_id},
            ).scalar()
            assert lease is None, "the lease is still held"
    finally:
        engine.dispose()
    return turns, list(usage)


def _text(wire: str) -> str:
    content = json.loads(wire)["content"]
    return content if isinstance(content, str) else content[0]["text"]


def with_port(db_url: str, port: int) -> str:
    return make_url(db_url).set(port=port).render_as_string(hide_password=False)


def named(db_url: str, application_name: str) -> str:
    return f"{db_url}&application_name={application_name}"


class Proxy:
    """A TCP proxy to the PostgreSQL server: ``down()`` stops listening and cuts every
    connection (a stopped server), ``up()`` listens again on the same port, and
    ``lose_answer_to(marker)`` forwards the next statement holding ``marker``, lets the
    server answer, drops that answer and cuts the connection (a lost acknowledgement)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._lock = threading.Lock()
        self._links: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self._marker: bytes | None = None
        self.answers_lost = 0
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked on it
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            self._cut(link)

    def lose_answer_to(self, marker: bytes) -> None:
        self._marker = marker

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            server = socket.create_connection(self.target)
            link = (client, server)
            with self._lock:
                self._links.append(link)
            swallow = threading.Event()
            threading.Thread(target=self._upstream, args=(link, swallow), daemon=True).start()
            threading.Thread(target=self._downstream, args=(link, swallow), daemon=True).start()

    def _upstream(
        self, link: tuple[socket.socket, socket.socket], swallow: threading.Event
    ) -> None:
        client, server = link
        tail = b""  # the end of the previous chunk: a marker may straddle two
        try:
            while data := client.recv(65536):
                marker = self._marker
                if marker is not None and marker in tail + data:
                    self._marker = None
                    swallow.set()  # before the server can answer
                tail = data[-200:]
                server.sendall(data)
        except OSError:
            pass
        self._cut(link)

    def _downstream(
        self, link: tuple[socket.socket, socket.socket], swallow: threading.Event
    ) -> None:
        client, server = link
        seen = b""
        try:
            while data := server.recv(65536):
                if not swallow.is_set():
                    client.sendall(data)
                    continue
                seen += data
                if b"Z\x00\x00\x00\x05" in seen:  # ReadyForQuery: the statement is done
                    self.answers_lost += 1
                    break
        except OSError:
            pass
        self._cut(link)

    def _cut(self, link: tuple[socket.socket, socket.socket]) -> None:
        for sock in link:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def proxy(db_url: str) -> Iterator[Proxy]:
    postgres_only(db_url)
    url = make_url(db_url)
    running = Proxy((url.host or "127.0.0.1", url.port or 5432))
    yield running
    running.down()


def responder(action: Callable[[], None], reply: Reply) -> Callable[[Any], Reply]:
    """FakeClaude's answer to the next request: ``action`` (a database fault), then ``reply``."""

    def respond(_request: Any) -> Reply:
        action()
        return reply

    return respond


# -- a restart between a send's request and its reply ---------------------------------


def test_reply_stored_after_a_restart_during_the_request(
    db_url: str, client: Client, fake: FakeClaude
) -> None:
    postgres_only(db_url)
    name = f"clust_faults_{uuid.uuid4().hex[:8]}"
    with Store(named(db_url, name)) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        fake.enqueue(responder(lambda: terminate(db_url, name), Reply.text("paid for")))

        reply = conv.send(client, "hello")

        assert reply.text() == "paid for"
        assert len(fake.requests) == 1
        turns, usage = stored(db_url, conv.id)
        assert turns == [("user", "hello"), ("assistant", "paid for")]
        [row] = usage
        assert row.outcome == "reply" and row.message_position == 1
        assert row.input_tokens > 0 and row.output_tokens > 0
        assert row.request_id and row.finished_at is not None


@pytest.mark.anyio
async def test_reply_stored_after_a_restart_during_the_request_async(
    db_url: str, aclient: AsyncClient, fake: FakeClaude
) -> None:
    postgres_only(db_url)
    name = f"clust_faults_{uuid.uuid4().hex[:8]}"
    async with await Store.aopen(named(db_url, name)) as store:
        conv = await store.acreate_conversation(model=MODEL, max_tokens=64)
        fake.enqueue(responder(lambda: terminate(db_url, name), Reply.text("paid for")))

        reply = await conv.asend(aclient, "hello")

        assert reply.text() == "paid for"
        turns, usage = stored(db_url, conv.id)
        assert turns == [("user", "hello"), ("assistant", "paid for")]
        assert [row.outcome for row in usage] == ["reply"]


def test_first_operations_after_a_restart_work(
    db_url: str, client: Client, fake: FakeClaude
) -> None:
    postgres_only(db_url)
    name = f"clust_faults_{uuid.uuid4().hex[:8]}"
    with Store(named(db_url, name)) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        conv.send(client, "first")
        pooled = [store.engine.connect() for _ in range(3)]  # several idle connections
        for connection in pooled:
            connection.exec_driver_sql("SELECT 1")
            connection.close()

        terminate(db_url, name)
        assert [m.text() for m in store.get_conversation(conv.id).history] == [
            "first",
            "Echo: first",
        ]
        terminate(db_url, name)
        assert conv.send(client, "second").text() == "Echo: second"
        assert len(fake.requests) == 2


# -- a commit whose acknowledgement was lost ---------------------------------------------


def test_reply_whose_commit_acknowledgement_was_lost_is_stored_once(
    db_url: str, proxy: Proxy, client: Client, fake: FakeClaude
) -> None:
    with Store(with_port(db_url, proxy.port)) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        marker = f"reply-{uuid.uuid4().hex}"
        fake.enqueue(responder(lambda: proxy.lose_answer_to(marker.encode()), Reply.text(marker)))

        reply = conv.send(client, "hello")

        assert reply.text() == marker
        assert proxy.answers_lost == 1  # the reply's write was applied, unacknowledged
        turns, usage = stored(db_url, conv.id)
        assert turns == [("user", "hello"), ("assistant", marker)]
        assert [(row.outcome, row.message_position) for row in usage] == [("reply", 1)]
        assert conv.send(client, "next").text() == "Echo: next"
        assert [row.outcome for row in stored(db_url, conv.id)[1]] == ["reply", "reply"]


# -- the database away past the bound ------------------------------------------------------


def test_database_away_past_the_bound_raises_the_reply_and_the_next_call_stores_it(
    db_url: str, proxy: Proxy, client: Client, fake: FakeClaude
) -> None:
    with Store(with_port(db_url, proxy.port), reconnect_seconds=0.5) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        fake.enqueue(responder(proxy.down, Reply.text("kept safe")))

        started = time.monotonic()
        with pytest.raises(ReplyNotStored) as caught:
            conv.send(client, "hello")
        assert time.monotonic() - started < 10  # bounded

        error = caught.value
        assert error.reply.text() == "kept safe"
        assert error.usage.output_tokens > 0
        assert (error.conversation_id, error.position) == (conv.id, 1)
        assert isinstance(error.__cause__, DatabaseUnavailable)
        assert "retry" in str(error)
        turns = admin_rows(db_url, conv.id)
        assert turns == (["user"], ["unknown"])  # pending, the attempt of unknown outcome

        with pytest.raises(ReplyNotStored):  # still away: kept, nothing sent
            conv.retry(client)
        assert len(fake.requests) == 1

        proxy.up()
        with pytest.raises(NothingToRetry):  # stored first: nothing left to resend
            conv.retry(client)
        assert len(fake.requests) == 1  # never billed twice
        turns, usage = stored(db_url, conv.id)
        assert turns == [("user", "hello"), ("assistant", "kept safe")]
        assert [(row.outcome, row.message_position) for row in usage] == [("reply", 1)]
        assert usage[0].output_tokens == error.usage.output_tokens

        assert conv.send(client, "next").text() == "Echo: next"
        assert len(fake.requests) == 2


def admin_rows(db_url: str, conversation_id: str) -> tuple[list[str], list[str]]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            roles = (
                connection.execute(
                    text(
                        "SELECT role FROM clust_messages WHERE conversation_id = :id "
                        "ORDER BY position"
                    ),
                    {"id": conversation_id},
                )
                .scalars()
                .all()
            )
            outcomes = (
                connection.execute(
                    text("SELECT outcome FROM clust_usage WHERE conversation_id = :id ORDER BY id"),
                    {"id": conversation_id},
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    return list(roles), list(outcomes)


def test_stopped_server_is_a_typed_error(db_url: str, proxy: Proxy) -> None:
    url = with_port(db_url, proxy.port)
    with Store(url, reconnect_seconds=0.2) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        proxy.down()
        with pytest.raises(DatabaseUnavailable) as caught:
            store.get_conversation(conv.id)
        assert caught.value.__cause__ is not None
        with pytest.raises(DatabaseUnavailable, match="cannot connect"):
            Store(url)
        proxy.up()
        assert store.get_conversation(conv.id).id == conv.id


# -- URLs, drivers, ports ------------------------------------------------------------------


def test_a_path_is_not_a_url() -> None:
    with pytest.raises(InvalidParameter, match=r"sqlite:///chat\.db"):
        Store("chat.db")


def test_a_database_clust_does_not_support() -> None:
    with pytest.raises(InvalidParameter, match="SQLite or PostgreSQL") as caught:
        Store("mysql://user:secret@localhost/chat")
    assert "secret" not in str(caught.value)


def test_a_missing_driver() -> None:
    pytest.importorskip("sqlalchemy")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed")
    with pytest.raises(DatabaseDriverMissing, match=r"psycopg\[binary\]") as caught:
        Store("postgresql+psycopg2://postgres@127.0.0.1/test")
    assert isinstance(caught.value.__cause__, ImportError)


def test_a_wrong_port() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DatabaseUnavailable, match=f"port {port}") as caught:
        Store(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    assert caught.value.__cause__ is not None


def test_an_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="cannot open the SQLite database"):
        Store(f"sqlite:///{tmp_path / 'missing' / 'chat.db'}")


def test_the_postgres_scheme_is_accepted(db_url: str, client: Client) -> None:
    postgres_only(db_url)
    short = db_url.replace("postgresql+psycopg://", "postgres://", 1)
    with Store(short) as store:
        assert store.engine.dialect.driver == "psycopg"
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        assert conv.send(client, "hi").text() == "Echo: hi"


# -- a full disk -----------------------------------------------------------------------------


def fill_up(engine: Engine) -> None:
    """From now on, the file cannot grow (SQLite's "database or disk is full", as on a
    full disk): every new connection is capped at the pages the file has now."""
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()

    @event.listens_for(engine, "connect")
    def _cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    engine.dispose()


def test_a_full_disk(db_url: str, client: Client, fake: FakeClaude) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("a full disk is simulated with SQLite's page limit")
    with Store(db_url) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        fill_up(store.engine)
        with pytest.raises(DatabaseFull, match="full") as caught:
            conv.send(client, "x" * 100_000)
        assert caught.value.__cause__ is not None
        assert len(fake.requests) == 0  # nothing was sent


def test_a_full_disk_at_the_reply_keeps_the_reply(
    db_url: str, client: Client, fake: FakeClaude
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("a full disk is simulated with SQLite's page limit")
    with Store(db_url) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=64)
        big = "y" * 200_000
        fake.enqueue(responder(lambda: fill_up(store.engine), Reply.text(big)))
        with pytest.raises(ReplyNotStored) as caught:
            conv.send(client, "hello")
        assert caught.value.reply.text() == big
        assert isinstance(caught.value.__cause__, DatabaseFull)
        assert conv.pending


# -- a read-only SQLite file -------------------------------------------------------------------

_READER = textwrap.dedent(
    """
    import json, sys
    from clust import Client, Store
    from clust.messages.errors import DatabaseReadOnly

    url, port = sys.argv[1], int(sys.argv[2])
    client = Client(api_key="k", base_url=f"http://127.0.0.1:{port}")
    out = {}
    with Store(url) as store:
        [conv] = store.list_conversations()
        out["history"] = [m.text() for m in store.get_conversation(conv.id).history]
        out["requests"] = conv.usage().requests
        for name, write in [
            ("create", lambda: store.create_conversation(model="claude-sonnet-5-5", max_tokens=8)),
            ("send", lambda: conv.send(client, "more")),
        ]:
            try:
                write()
                out[name] = "written"
            except DatabaseReadOnly as error:
                out[name] = str(error)
    print(json.dumps(out))
    """
)


def _as_reader() -> list[str]:
    """Run a child without the root privilege of writing read-only files."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner"]


@pytest.mark.parametrize(
    "directory_writable", [False, True], ids=["read-only-dir", "read-only-file"]
)
def test_a_read_only_sqlite_file_is_readable(
    db_url: str, client: Client, fake: FakeClaude, directory_writable: bool
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("an SQLite file")
    shared = Path(make_url(db_url).database or "").parent / "shared"
    shared.mkdir()
    url = f"sqlite:///{shared / 'chat.db'}"
    with Store(url) as store:
        store.create_conversation(model=MODEL, max_tokens=64).send(client, "hi")
    for leftover in shared.glob("chat.db-*"):
        leftover.unlink()
    (shared / "chat.db").chmod(0o444)
    shared.chmod(0o755 if directory_writable else 0o555)
    try:
        done = subprocess.run(
            [*_as_reader(), sys.executable, "-c", _READER, url, str(fake.port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shared.chmod(0o755)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["history"] == ["hi", "Echo: hi"]
    assert out["requests"] == 1
    for write in ("create", "send"):
        assert "read-only" in out[write]
    assert len(fake.requests) == 1  # the refused send sent nothing


_FILE_SIZE_LIMIT_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
from clust import Store
from clust.messages import DatabaseUnavailable
store = Store("sqlite:///" + sys.argv[1])
store.create_conversation(model="claude-sonnet-5-5", max_tokens=16)
limit = 4 * 1024 * 1024
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    for _ in range(200):
        store.create_conversation(model="claude-sonnet-5-5", max_tokens=16, title="x" * 100_000)
except DatabaseUnavailable as error:
    print("typed:", error)
    sys.exit(0)
except BaseException as error:
    print("untyped:", type(error).__module__, type(error).__name__, error)
    sys.exit(1)
print("no error")
sys.exit(2)
"""


def test_a_write_past_the_file_size_limit_raises_a_typed_error(tmp_path: Path) -> None:
    """An I/O error while writing (here EFBIG from RLIMIT_FSIZE, as a failing disk
    gives EIO) is rolled back by SQLite: it is raised as DatabaseUnavailable, not as
    the driver's error."""
    child = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT_CHILD, str(tmp_path / "limited.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stdout + child.stderr
    assert "could not be read or written" in child.stdout
