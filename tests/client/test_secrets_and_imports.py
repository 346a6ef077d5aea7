"""The API key never leaks; importing clust stays light."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from support import simple_body

from clust import Client
from clust.messages import errors
from clust.protocol.request import Credentials
from clust.testing import FakeClaude, Reply

SECRET = "sk-ant-api03-SUPERSECRET-do-not-leak"


def test_key_never_in_logs_reprs_or_errors(
    fake: FakeClaude, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.enqueue(Reply.error(401, "authentication_error", "invalid x-api-key"))
    with Client(api_key=SECRET, base_url=fake.base_url, max_retries=0) as client:
        texts = [repr(client), str(client), repr(client.retry_policy)]
        with pytest.raises(errors.AuthenticationError) as caught:
            client.create_a_message(simple_body())
        texts += [str(caught.value), repr(caught.value), json.dumps(caught.value.body)]
    with Client(api_key=SECRET, base_url="http://127.0.0.1:9", max_retries=0) as client:
        with pytest.raises(errors.ConnectionFailed) as refused:
            client.create_a_message(simple_body())
        texts += [str(refused.value), repr(refused.value), str(refused.value.__cause__)]
    texts += [caplog.text, repr(Credentials(SECRET)), str(Credentials(SECRET))]
    for text in texts:
        assert SECRET not in text
        assert "SUPERSECRET" not in text


def test_from_env(monkeypatch: pytest.MonkeyPatch, fake: FakeClaude) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "token-1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    monkeypatch.setenv("ANTHROPIC_CUSTOM_HEADERS", "X-One: 1\nX-Two: two")
    with Client.from_env() as client:
        client.create_a_message(simple_body())
    headers = fake.last_request.headers
    assert headers["authorization"] == "Bearer token-1"
    assert headers["x-one"] == "1" and headers["x-two"] == "two"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "key-wins")
    with Client.from_env() as client:
        client.create_a_message(simple_body())
    assert fake.last_request.headers["authorization"] == "Bearer key-wins"


def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with pytest.raises(errors.MissingCredentials, match="ANTHROPIC_API_KEY"):
        Client.from_env()
    with pytest.raises(errors.MissingCredentials):
        Client(api_key="")


def test_import_and_client_do_not_load_the_store() -> None:
    code = (
        "import sys, clust\n"
        "from clust import Client\n"
        "from clust.messages import MessagesRequestBody\n"
        "Client(api_key='k')\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'alembic', 'anthropic')]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
