"""Bad input raises a typed clust error, cause chained, naming the field and what is
allowed: a model built by keyword with a typo, a price that overflows, a price file
nested too deep, an API key or header value that could not be sent."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from clust import AsyncClient, Client
from clust.messages import CacheControl, Message, MessagesRequestBody, OutputConfig
from clust.messages import errors as e
from clust.protocol.request import Credentials
from clust.usage import Price, PriceTable

SECRET = "sk-ant-api03-Qx7Vb2Lm9Tz4-keytail"
FRAGMENT = "Qx7Vb2Lm9Tz4"


def body(**fields: object) -> MessagesRequestBody:
    given: dict[str, object] = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 64,
        "messages": [Message.user("hi")],
    }
    return MessagesRequestBody(**{**given, **fields})  # type: ignore[arg-type]


# --- models built by keyword ---------------------------------------------------------


def test_a_field_typo_is_a_clust_error_naming_the_field() -> None:
    with pytest.raises(e.InvalidFields) as caught:
        body(temprature=0.5)
    error = caught.value
    assert isinstance(error, e.InvalidParameter) and isinstance(error, e.MessagesError)
    assert isinstance(error, ValueError)
    assert error.field == "temprature" and error.value == 0.5
    assert "MessagesRequestBody.temprature" in str(error)
    assert "did you mean 'temperature'" in str(error)
    assert "\n" not in str(error)
    assert isinstance(error.__cause__, ValidationError)
    # Code written against pydantic keeps working: it is also the ValidationError.
    assert isinstance(error, ValidationError)
    assert error.errors()[0]["type"] == "extra_forbidden"
    # A failed value check is still raised as the InvalidParameter itself.
    with pytest.raises(e.InvalidParameter) as value_check:
        body(temperature=1.5)
    assert type(value_check.value) is e.InvalidParameter
    assert value_check.value.field == "temperature"


def test_every_keyword_built_model_raises_it() -> None:
    cases = [
        (lambda: OutputConfig(effort="extreme"), "effort", "'extreme'"),
        (lambda: Message(role="robot", content="x"), "role", "'robot'"),
        (lambda: CacheControl(ttl="2h"), "ttl", "'5m' or '1h'"),
        (lambda: body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "user"),
    ]
    for build, field, said in cases:
        with pytest.raises(e.InvalidFields) as caught:
            build()
        assert caught.value.field == field
        assert said in str(caught.value)
        assert isinstance(caught.value.__cause__, ValidationError)


def test_a_missing_field_and_several_problems() -> None:
    with pytest.raises(e.InvalidFields) as caught:
        MessagesRequestBody(model="claude-sonnet-5-5", messages="nope", stop="x")  # type: ignore[call-arg,arg-type]
    error = caught.value
    assert error.field == "max_tokens" and error.value is None
    assert error.allowed == "a value (the field is required)"
    assert len(error.problems) == 3
    assert "MessagesRequestBody.max_tokens: required" in str(error)
    assert "MessagesRequestBody.stop: unknown field" in str(error)


def test_invalid_fields_pickle_and_parsing_stays_pydantic() -> None:
    with pytest.raises(e.InvalidFields) as caught:
        body(temprature=0.5)
    copied = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(copied, e.InvalidFields)
    assert str(copied) == str(caught.value) and copied.field == "temprature"
    # Parsing wire JSON is pydantic's own path (the client maps its errors itself).
    with pytest.raises(ValidationError) as parsed:
        Message.model_validate({"role": "robot", "content": "x"})
    assert not isinstance(parsed.value, e.MessagesError)


# --- prices ----------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["1e999999999", "1E+1000", "NaN", "-1", "Infinity", "1e-13"])
def test_a_price_out_of_range_is_invalid_parameter(amount: str) -> None:
    with pytest.raises(e.InvalidParameter) as caught:
        Price("m", date(2026, 1, 1), amount, "1")
    assert caught.value.field == "input"
    assert "1,000,000,000" in caught.value.allowed


def test_a_price_file_that_overflows_or_nests_too_deep(tmp_path: Path) -> None:
    entry = '{"model": "m", "effective_from": "2026-01-01", "input": %s, "output": "1"}'
    cases = {
        "overflow.json": '{"prices": [%s]}' % (entry % "1e999999999"),
        "nan.json": "[%s]" % (entry % "NaN"),
        "negative.json": "[%s]" % (entry % '"-3"'),
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep-object.json": '{"a":' * 50_000 + "1" + "}" * 50_000,
        "huge-int.json": "[%s]" % (entry % ("9" * 5000)),
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(e.InvalidParameter) as caught:
            PriceTable.from_file(path)
        assert name in str(caught.value), name
        assert "\n" not in str(caught.value)
    # Brackets inside strings are not nesting: a shallow file still loads.
    model = "[" * 200 + "{" * 200
    shallow = tmp_path / "ok.json"
    shallow.write_text(json.dumps({"prices": [json.loads(entry % '"3"') | {"model": model}]}))
    assert PriceTable.from_file(shallow).prices[0].model == model


# --- keys and headers ------------------------------------------------------------------


BAD_KEYS = {
    SECRET + "\n": f"ends with a newline (U+000A) at position {len(SECRET)}; strip it",
    SECRET + "\r\n": "ends with a newline",
    " " + SECRET: "starts with a space",
    SECRET[:10] + "\u00e9" + SECRET[10:]: "non-ASCII character, U+00E9, at position 10",
    SECRET[:10] + "\x00" + SECRET[10:]: "control character, U+0000, at position 10",
    SECRET[:10] + "\t" + SECRET[10:]: "control character, a tab (U+0009), at position 10",
    "  \n": "is blank",
}


def _all_text(error: BaseException) -> str:
    return " ".join([str(error), repr(error), repr(error.args), repr(vars(error))])


@pytest.mark.parametrize("key", list(BAD_KEYS))
@pytest.mark.parametrize("client_type", [Client, AsyncClient])
def test_an_unsendable_key_is_refused_at_construction_without_quoting_it(
    key: str, client_type: type[Client] | type[AsyncClient]
) -> None:
    for scheme in ("bearer", "x-api-key"):
        with pytest.raises(e.InvalidApiKey) as caught:
            client_type(api_key=key, base_url="http://127.0.0.1:9", auth_scheme=scheme)  # type: ignore[arg-type]
        error = caught.value
        assert isinstance(error, e.InvalidParameter) and isinstance(error, ValueError)
        assert error.field == "api_key" and error.value == "<redacted>"
        assert BAD_KEYS[key] in str(error)
        text = _all_text(error) + repr(pickle.loads(pickle.dumps(error)))
        assert FRAGMENT not in text and SECRET not in text


def test_an_unsendable_key_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET + "\n")
    with pytest.raises(e.InvalidApiKey, match=r"^ANTHROPIC_API_KEY: ends with a newline") as caught:
        Client.from_env()
    assert FRAGMENT not in _all_text(caught.value)
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "tok\u2019en")
    with pytest.raises(e.InvalidApiKey, match=r"^ANTHROPIC_AUTH_TOKEN: contains a non-ASCII"):
        AsyncClient.from_env()


def test_credentials_hide_the_key_and_refuse_pickling() -> None:
    credentials = Credentials(SECRET, "x-api-key")
    assert FRAGMENT not in repr(credentials) + str(credentials)
    with pytest.raises(e.CredentialsNotSerializable) as caught:
        pickle.dumps(credentials)
    assert isinstance(caught.value, TypeError) and FRAGMENT not in _all_text(caught.value)
    assert copy.deepcopy(credentials) is credentials
    with pytest.raises(e.InvalidParameter, match="auth_scheme"):
        Credentials(SECRET, "basic")  # type: ignore[arg-type]
    with pytest.raises(e.MissingCredentials):
        Credentials("")


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ({"x-team": "a\nb"}, "headers['x-team']: contains a control character, a newline"),
        ({"x-team": "caf\u00e9"}, "headers['x-team']: contains a non-ASCII character, U+00E9"),
        ({"x-team": "ok "}, "headers['x-team']: ends with a space"),
        ({"x team": "ok"}, "headers['x team']: is not a valid header name"),
        ({"x-team": 3}, "headers['x-team']: is a int, not a str"),
    ],
)
def test_default_headers_are_checked_at_construction(headers: dict[str, object], said: str) -> None:
    with pytest.raises(e.InvalidHeaderValue) as caught:
        Client(api_key=SECRET, default_headers=headers)  # type: ignore[arg-type]
    assert str(caught.value).startswith(said)
    assert caught.value.value == "<redacted>"


def test_a_header_value_is_never_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_CUSTOM_HEADERS", f"X-Upstream-Key: {SECRET}\u00e9")
    with pytest.raises(e.InvalidHeaderValue) as caught:
        Client.from_env()
    assert "X-Upstream-Key" in str(caught.value) and FRAGMENT not in _all_text(caught.value)


@pytest.mark.parametrize("betas", [[1], [None], 5, [b"files-api-2025-04-14"]])
def test_betas_that_are_not_names_are_refused_before_the_network(betas: object) -> None:
    from clust.testing import FakeClaude

    with FakeClaude() as fake, Client(api_key="test-key", base_url=fake.base_url) as client:
        request = body(messages=[Message.user("hi")])
        with pytest.raises(e.InvalidParameter) as raised:
            client.create_a_message(request, betas=betas)  # type: ignore[arg-type]
        assert raised.value.field == "betas"
        # one name given as a plain string is one beta
        client.create_a_message(request, betas="files-api-2025-04-14")
        assert len(fake.requests) == 1
        assert fake.requests[0].headers["anthropic-beta"] == "files-api-2025-04-14"
