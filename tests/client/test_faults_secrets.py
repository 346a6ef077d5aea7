"""The API key leaks nowhere: every feature is exercised with a distinctive key, then
every artifact is searched for it (and for a fragment of it): vars() and reprs of
clients and settings, pickles, exception strings, reprs and causes (with the httpx
request they carry), DEBUG logs of every logger (httpx and httpcore included), the
SQLite file, a pg_dump of the PostgreSQL schema, exports and the ``clust`` command's
output. A key that could not be sent is refused before the network, never retried,
never quoted."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli.cli_support import assert_one_line_failure, clean_env, clust
from sqlalchemy import create_engine, inspect, text
from store.conftest import db_url  # noqa: F401  (the SQLite / PostgreSQL fixture)
from support import simple_body

from clust import AsyncClient, Client, Store
from clust.messages import BatchRequest, errors
from clust.protocol.retry import RetryPolicy
from clust.testing import FakeClaude, Reply

FRAGMENT = "Wv3Kq8Zr1Np6"
SECRET = f"sk-ant-api03-{FRAGMENT}-hJ5sT0dY-AA"
MODEL = "claude-sonnet-5-5"
FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)


class Artifacts:
    """Everything a user or an attacker could read after the exercise."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.blobs: list[bytes] = []

    def text(self, *values: object) -> None:
        self.texts.extend(value if isinstance(value, str) else repr(value) for value in values)

    def state(self, obj: object) -> None:
        """repr, str and vars() of ``obj``, and its pickle (or why pickling failed)."""
        self.text(obj, str(obj))
        if hasattr(obj, "__dict__"):
            self.text(vars(obj))
        try:
            self.blobs.append(pickle.dumps(obj))
        except Exception as exc:
            self.error(exc)

    def error(self, error: BaseException) -> None:
        """str, repr, args and attributes of ``error`` and of every error in its chain,
        with the headers of any httpx request it carries."""
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.text(str(current), current, current.args, getattr(current, "__dict__", {}))
            request = getattr(current, "_request", None)  # httpx.RequestError's request
            if request is not None:
                self.text(dict(request.headers), request.headers.raw)
            current = current.__cause__ or current.__context__

    def assert_clean(self) -> None:
        for value in self.texts:
            assert SECRET not in value and FRAGMENT not in value, value
        for blob in self.blobs:
            assert FRAGMENT.encode() not in blob, blob[:200]
            assert FRAGMENT.encode("utf-16-le") not in blob


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeClaude]:
    with FakeClaude(api_key=SECRET) as fake:  # any other key is answered 401
        yield fake


@pytest.fixture
def artifacts(caplog: pytest.LogCaptureFixture) -> Iterator[Artifacts]:
    for name in (None, "httpx", "httpcore", "clust", "sqlalchemy"):
        caplog.set_level(logging.DEBUG, logger=name)
    found = Artifacts()
    yield found
    records = caplog.get_records("call")
    assert any(r.name.startswith("httpcore") for r in records)  # DEBUG logs were captured
    shown = logging.Formatter("%(name)s %(levelname)s %(message)s")
    found.text(*(shown.format(record) for record in records), *(r.args for r in records))
    found.assert_clean()


def _drain(client: Client, found: Artifacts, fake: FakeClaude) -> None:
    """Every API call of the client, and the errors a user can hit."""
    client.create_a_message(simple_body())
    with client.create_a_message_stream(simple_body()) as stream:
        found.text(stream, "".join(stream.text_stream))
    client.count_tokens(simple_body())
    models = list(client.list_models(limit=2))
    client.get_model(models[0].id)
    batch = client.create_message_batch([BatchRequest("one", simple_body())])
    client.get_message_batch(batch.id)
    list(client.list_message_batches(limit=5))
    found.text([result.custom_id for result in client.message_batch_results(batch.id)])
    client.delete_message_batch(batch.id)
    fake.enqueue(*[Reply.error(529, "overloaded_error", "busy")] * 3)
    with pytest.raises(errors.OverloadedError) as overloaded:
        client.create_a_message(simple_body())
    found.error(overloaded.value)
    sent = len(fake.requests)
    with pytest.raises(errors.InvalidHeaderValue) as bad_header:
        client.create_a_message(simple_body(), extra_headers={"x-api-key": SECRET + "\n"})
    found.error(bad_header.value)
    assert len(fake.requests) == sent  # refused before the network


@pytest.mark.parametrize("scheme", ["bearer", "x-api-key"])
def test_client_features_leave_no_key(fake: FakeClaude, artifacts: Artifacts, scheme: Any) -> None:
    with Client(api_key=SECRET, base_url=fake.base_url, retry_policy=FAST, auth_scheme=scheme) as c:
        artifacts.state(c)
        artifacts.state(c._settings)
        artifacts.state(c._settings.credentials)
        _drain(c, artifacts, fake)
        artifacts.state(c)
        artifacts.state(c._settings)
    dead = Client(api_key=SECRET, base_url="http://127.0.0.1:9", max_retries=0)
    with dead, pytest.raises(errors.ConnectionFailed) as caught:
        dead.create_a_message(simple_body())
    artifacts.error(caught.value)
    cause = caught.value.__cause__
    assert cause is not None and getattr(cause, "_request", None) is not None  # checked above
    # A wrong key gets 401 from the fake: the right one was sent on every call above.
    other = Client(api_key="sk-other", base_url=fake.base_url, max_retries=0)
    with other, pytest.raises(errors.AuthenticationError) as unauthorized:
        other.create_a_message(simple_body())
    artifacts.error(unauthorized.value)


def test_settings_hold_no_key_in_any_mapping(fake: FakeClaude) -> None:
    with Client(api_key=SECRET, base_url=fake.base_url) as client:
        client.create_a_message(simple_body())
        http = client._http
        assert not any(FRAGMENT in value for value in client._settings.headers.values())
        assert not any(FRAGMENT in value for value in http.headers.values())
        with pytest.raises(errors.CredentialsNotSerializable):
            pickle.dumps(client._settings)


def test_a_request_h11_refuses_to_write_is_not_retried_nor_quoted(fake: FakeClaude) -> None:
    """A header only the caller's own httpx client adds (an event hook) is past clust's
    checks: h11 refuses it, the same on every attempt, so it is raised at once, and
    the clust error does not quote h11's text (which holds the value)."""
    calls: list[str] = []

    def bad_header(request: httpx.Request) -> None:
        calls.append(request.url.path)
        request.headers["x-upstream"] = SECRET + "\n"

    http = httpx.Client(event_hooks={"request": [bad_header]})
    client = Client(api_key=SECRET, base_url=fake.base_url, retry_policy=FAST, http_client=http)
    with http, client, pytest.raises(errors.ConnectionFailed) as caught:
        client.create_a_message(simple_body())
    assert calls == ["/v1/messages"] and fake.requests == []
    assert FRAGMENT not in str(caught.value) + repr(caught.value)
    assert isinstance(caught.value.__cause__, httpx.LocalProtocolError)


@pytest.mark.anyio
async def test_async_client_leaves_no_key(fake: FakeClaude, artifacts: Artifacts) -> None:
    async with AsyncClient(api_key=SECRET, base_url=fake.base_url, retry_policy=FAST) as client:
        artifacts.state(client)
        await client.create_a_message(simple_body())
        async with client.create_a_message_stream(simple_body()) as stream:
            artifacts.text("".join([text async for text in stream.text_stream]))
        await client.count_tokens(simple_body())
        artifacts.text([model.id async for model in client.list_models(limit=2)])
        fake.enqueue(*[Reply.error(529, "overloaded_error", "busy")] * 3)
        with pytest.raises(errors.OverloadedError) as overloaded:
            await client.create_a_message(simple_body())
        artifacts.error(overloaded.value)
        artifacts.state(client)
        artifacts.state(client._settings)
    async with AsyncClient(api_key=SECRET, base_url="http://127.0.0.1:9", max_retries=0) as dead:
        with pytest.raises(errors.ConnectionFailed) as caught:
            await dead.create_a_message(simple_body())
    artifacts.error(caught.value)


@pytest.mark.parametrize("client_type", [Client, AsyncClient])
@pytest.mark.parametrize("tail", ["\n", "\r\n", " ", "\u00e9"])
def test_an_unsendable_key_never_reaches_the_network(
    fake: FakeClaude,
    artifacts: Artifacts,
    tail: str,
    client_type: type[Client] | type[AsyncClient],
) -> None:
    with pytest.raises(errors.InvalidApiKey) as caught:
        client_type(api_key=SECRET + tail, base_url=fake.base_url)
    artifacts.error(caught.value)
    assert fake.requests == []
    logging.getLogger("httpcore.probe").debug("nothing sent")  # the fixture wants one record


# --- the conversation store -----------------------------------------------------------


def _postgres_dump(url: str, found: Artifacts) -> None:
    """Every row of the test's schema as text, and a pg_dump of it when installed."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                rows = connection.execute(text(f'SELECT t::text FROM "{table}" t')).scalars()
                found.text(*rows)
    finally:
        engine.dispose()
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return
    parsed = urllib.parse.urlsplit(url.replace("postgresql+psycopg", "postgresql"))
    schema = urllib.parse.parse_qs(parsed.query)["options"][0].split("=", 1)[1]
    dump = subprocess.run(
        [
            pg_dump,
            "-h",
            parsed.hostname or "127.0.0.1",
            "-p",
            str(parsed.port or 5432),
            "-U",
            parsed.username or "postgres",
            "-n",
            schema,
            parsed.path.lstrip("/"),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert b"clust_" in dump.stdout
    found.blobs.append(dump.stdout)


def _database_files(url: str, found: Artifacts) -> None:
    path = Path(url.removeprefix("sqlite:///"))
    for file in path.parent.glob(path.name + "*"):  # the database, its -wal and -shm
        found.blobs.append(file.read_bytes())


def test_conversations_and_exports_leave_no_key(
    db_url: str,  # noqa: F811  (the fixture imported above; first: a skip comes before artifacts)
    fake: FakeClaude,
    artifacts: Artifacts,
    tmp_path: Path,
) -> None:
    with (
        Store(db_url) as store,
        Client(api_key=SECRET, base_url=fake.base_url, retry_policy=FAST) as client,
    ):
        conv = store.create_conversation(model=MODEL, max_tokens=64, title="secrets")
        conv.send(client, "Hello")
        with conv.stream(client, "And then?") as stream:
            artifacts.text("".join(stream.text_stream))
        conv.count_tokens(client, "Next")
        fake.enqueue(*[Reply.error(529, "overloaded_error", "busy")] * 3)
        with pytest.raises(errors.OverloadedError) as failed:
            conv.send(client, "fails")
        artifacts.error(failed.value)
        conv.retry(client)
        other = store.create_conversation(model=MODEL, max_tokens=64)
        batch = store.batch_send(client, [(other, "batched")])
        store.collect_batch(client, batch, wait=True)
        exported = store.export_conversation(conv)
        artifacts.text(json.dumps(exported, default=str), conv.usage(), store, conv)
        artifacts.state(conv)
        conversation_id = conv.id
    if db_url.startswith("sqlite"):
        _database_files(db_url, artifacts)
    # The command line, with the key in its environment, on the same database.
    env = clean_env(tmp_path, fake.base_url, ANTHROPIC_API_KEY=SECRET)
    outputs = [
        clust("chat", "--db", db_url, "--conversation", conversation_id, env=env, input="Hi\n"),
        clust("conversations", "list", "--db", db_url, env=env),
        clust("conversations", "show", conversation_id, "--db", db_url, env=env),
        clust("conversations", "export", conversation_id, "--db", db_url, env=env),
        clust("usage", "--db", db_url, "--format", "json", env=env),
        clust("batches", "list", "--db", db_url, env=env),
    ]
    for result in outputs:
        assert result.returncode == 0, (result.args, result.stderr)
        artifacts.text(result.stdout, result.stderr)
    bad = clust(
        "chat", "--db", db_url, env={**env, "ANTHROPIC_API_KEY": SECRET + "\n"}, input="Hi\n"
    )
    line = assert_one_line_failure(bad, code=2)
    assert line.startswith("clust: ANTHROPIC_API_KEY: ends with a newline")
    artifacts.text(bad.stdout, bad.stderr)
    if db_url.startswith("sqlite"):
        _database_files(db_url, artifacts)
    else:
        _postgres_dump(db_url, artifacts)
    assert "Echo: Hi" in outputs[0].stdout  # the command's request carried the right key


@pytest.mark.parametrize("client_class", [Client, AsyncClient])
def test_a_client_built_without_arguments_reads_the_environment_as_the_sdk_does(
    client_class: type[Client] | type[AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "env-key-123")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/")
    client = client_class()
    assert client._settings.base_url == "http://127.0.0.1:9"
    assert client._settings.credentials.header()[1].endswith("env-key-123")
    explicit = client_class(api_key="given", base_url="http://127.0.0.1:8")
    assert explicit._settings.base_url == "http://127.0.0.1:8"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(errors.MissingCredentials, match="ANTHROPIC_API_KEY"):
        client_class()
