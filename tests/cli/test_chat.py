"""``clust chat`` over pipes: options, failures mid-chat, and the errors that stop it
before it starts (missing key, unknown conversation, unusable database)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli.cli_support import assert_one_line_failure, clean_env, clust

from clust import Store
from clust.testing import FakeClaude, Reply


def _conversation_ids(url: str) -> list[str]:
    with Store(url) as store:
        return [conv.id for conv in store.list_conversations()]


def test_chat_over_a_pipe(fake: FakeClaude, tmp_path: Path, db_url: str) -> None:
    env = clean_env(tmp_path, fake.base_url)
    result = clust(
        "chat",
        "--db",
        db_url,
        "--model",
        "claude-haiku-5-5",
        "--system",
        "Be brief.",
        "--max-tokens",
        "300",
        "--title",
        "piped",
        env=env,
        input="Hello\n\n/help\nBonjour\n",  # ends at end of input
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Echo: Hello" in result.stdout and "Echo: Bonjour" in result.stdout
    assert "/quit" in result.stdout  # /help printed the commands
    body = fake.last_request.body
    assert body["model"] == "claude-haiku-5-5"
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 300
    [conversation_id] = _conversation_ids(db_url)
    assert f"resume with: clust chat --conversation {conversation_id}" in result.stdout
    with Store(db_url) as store:
        conv = store.get_conversation(conversation_id)
        assert conv.title == "piped"
        assert [m.text() for m in conv.history] == [
            "Hello",
            "Echo: Hello",
            "Bonjour",
            "Echo: Bonjour",
        ]


def test_resume_overrides_the_model_for_this_session(
    fake: FakeClaude, tmp_path: Path, sqlite_url: str
) -> None:
    env = clean_env(tmp_path, fake.base_url)
    assert clust("chat", "--db", sqlite_url, env=env, input="one\n").returncode == 0
    [conversation_id] = _conversation_ids(sqlite_url)
    result = clust(
        "chat", "-c", conversation_id, "--model", "claude-opus-5-5", "--db", sqlite_url,
        env=env, input="two\n/quit\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "[1] assistant: Echo: one" in result.stdout
    assert fake.last_request.body["model"] == "claude-opus-5-5"
    with Store(sqlite_url) as store:
        conv = store.get_conversation(conversation_id)
        assert conv.model == "claude-sonnet-5-5"  # the stored default is unchanged
        assert len(conv.history) == 4


def test_a_failed_reply_is_kept_for_retry(
    fake: FakeClaude, tmp_path: Path, sqlite_url: str
) -> None:
    env = clean_env(tmp_path, fake.base_url)
    fake.enqueue(
        Reply.error(400, "invalid_request_error", "something is off"),
        Reply.text("Second try worked."),
    )
    result = clust(
        "chat", "--db", sqlite_url, env=env, input="Hello\nagain?\n/retry\n/retry\n/quit\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("clust: ") and "something is off" in result.stderr
    assert "/retry sends it again" in result.stdout
    assert "Second try worked." in result.stdout
    assert "nothing to retry" in result.stdout  # the second /retry
    [conversation_id] = _conversation_ids(sqlite_url)
    with Store(sqlite_url) as store:
        history = store.get_conversation(conversation_id).history
    assert [m.text() for m in history] == ["Hello", "Second try worked."]


def test_discard_drops_the_unanswered_message(
    fake: FakeClaude, tmp_path: Path, sqlite_url: str
) -> None:
    env = clean_env(tmp_path, fake.base_url)
    fake.enqueue(Reply.error(400, "invalid_request_error", "no"))
    result = clust("chat", "--db", sqlite_url, env=env, input="Hello\n/discard\nHi\n")
    assert result.returncode == 0, result.stderr
    [conversation_id] = _conversation_ids(sqlite_url)
    with Store(sqlite_url) as store:
        history = store.get_conversation(conversation_id).history
    assert [m.text() for m in history] == ["Hi", "Echo: Hi"]


def test_a_chat_with_nothing_said_is_not_kept(
    fake: FakeClaude, tmp_path: Path, sqlite_url: str
) -> None:
    result = clust("chat", "--db", sqlite_url, env=clean_env(tmp_path, fake.base_url))
    assert result.returncode == 0, result.stderr
    assert "not kept" in result.stdout
    assert _conversation_ids(sqlite_url) == []


def _default_database(tmp_path: Path, xdg: bool) -> Path:
    if sys.platform == "win32":
        return tmp_path / "appdata" / "clust" / "clust.db"
    if sys.platform == "darwin":
        return tmp_path / "home" / "Library" / "Application Support" / "clust" / "clust.db"
    if xdg:
        return tmp_path / "xdg" / "clust" / "clust.db"
    return tmp_path / "home" / ".local" / "share" / "clust" / "clust.db"


@pytest.mark.parametrize("xdg", [True, False], ids=["XDG_DATA_HOME", "HOME"])
def test_default_database_in_the_data_directory(
    fake: FakeClaude, tmp_path: Path, xdg: bool
) -> None:
    env = clean_env(
        tmp_path, fake.base_url, XDG_DATA_HOME=None if not xdg else str(tmp_path / "xdg")
    )
    expected = _default_database(tmp_path, xdg)
    assert not expected.exists()
    assert clust("chat", env=env, input="remember me\n").returncode == 0
    assert expected.exists()  # created on first use
    listed = clust("conversations", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert '"claude-sonnet-5-5"' in listed.stdout


def test_database_url_from_the_environment(
    fake: FakeClaude, tmp_path: Path, sqlite_url: str
) -> None:
    env = clean_env(tmp_path, fake.base_url, CLUST_DATABASE_URL=sqlite_url)
    assert clust("chat", env=env, input="hi\n").returncode == 0
    assert len(_conversation_ids(sqlite_url)) == 1
    assert not _default_database(tmp_path, xdg=True).exists()
    other = f"sqlite:///{(tmp_path / 'other.db').as_posix()}"
    assert clust("chat", "--db", other, env=env, input="hi\n").returncode == 0  # --db wins
    assert len(_conversation_ids(other)) == 1
    assert len(_conversation_ids(sqlite_url)) == 1


# -- errors before the chat starts ----------------------------------------------------------


@pytest.mark.parametrize("key_variable", [None, "ANTHROPIC_AUTH_TOKEN"])
def test_missing_key(fake: FakeClaude, tmp_path: Path, key_variable: str | None) -> None:
    env = clean_env(tmp_path, ANTHROPIC_BASE_URL=fake.base_url)
    if key_variable is not None:  # the other accepted variable works
        env[key_variable] = "token"
        assert clust("chat", env=env, input="hi\n").returncode == 0
        return
    result = clust("chat", env=env, input="hi\n")
    line = assert_one_line_failure(result, code=2)
    assert "ANTHROPIC_API_KEY" in line
    assert result.stdout == ""
    assert not _default_database(tmp_path, xdg=True).exists()  # checked before the database
    assert fake.requests == []


def test_unknown_conversation(fake: FakeClaude, tmp_path: Path, db_url: str) -> None:
    result = clust(
        "chat", "--conversation", "no-such-id", "--db", db_url,
        env=clean_env(tmp_path, fake.base_url), input="hi\n",
    )  # fmt: skip
    line = assert_one_line_failure(result)
    assert "no-such-id" in line
    assert fake.requests == []


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("not a url", id="unparsable"),
        pytest.param("chat.db", id="bare-path"),
        pytest.param("sqlite:///{tmp}/no/such/dir/chat.db", id="sqlite-unopenable"),
        pytest.param("postgresql+psycopg://postgres@127.0.0.1:1/test", id="postgres-refused"),
        pytest.param("postgresql+nosuchdriver://u@localhost/db", id="unknown-driver"),
    ],
)
@pytest.mark.parametrize("command", [["chat"], ["conversations", "list"], ["usage"]])
def test_unusable_database(fake: FakeClaude, tmp_path: Path, url: str, command: list[str]) -> None:
    result = clust(
        *command, "--db", url.format(tmp=tmp_path.as_posix()),
        env=clean_env(tmp_path, fake.base_url), input="hi\n",
    )  # fmt: skip
    line = assert_one_line_failure(result)
    if url == "chat.db":
        assert "sqlite:///chat.db" in line  # says what was probably meant
    assert fake.requests == []
