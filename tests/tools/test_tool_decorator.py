"""``clust.tools``: @tool schemas, validation, calls, results and the ``tools`` list."""

from __future__ import annotations

import ast
import dataclasses
import datetime
import enum
import json
import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import anyio
import pytest
from pydantic import BaseModel, Field

import clust.messages as messages
import clust.tools as tools
from clust import Client
from clust.messages import (
    CacheControl,
    DocumentContentBlock,
    ImageContentBlock,
    InvalidParameter,
    Message,
    MessagesError,
    MessagesRequestBody,
    TextContentBlock,
    ThinkingContentBlock,
    ToolReferenceContentBlock,
    ToolUseContentBlock,
)
from clust.messages import errors as error_module
from clust.testing import FakeClaude
from clust.tools import (
    ServerToolDefinition,
    Tool,
    ToolDefinition,
    ToolError,
    ToolInputError,
    ToolTimeout,
    UnknownTool,
    tool,
    tool_definitions,
    tool_result_content,
)
from clust.tools.docstrings import parse_docstring

# --- types used in signatures ------------------------------------------------------------------


class Unit(enum.Enum):
    CELSIUS = "c"
    FAHRENHEIT = "f"


class Address(BaseModel):
    street: str
    zip: Annotated[str, Field(min_length=5)]


@dataclasses.dataclass
class Reading:
    city: str
    degrees: float


def _schema(t: Tool[Any, Any]) -> dict[str, Any]:
    return t.definition.input_schema


# --- definitions and re-exports -----------------------------------------------------------------


def test_re_exported_definitions_are_the_messages_classes() -> None:
    assert tools.ToolDefinition is messages.ToolDefinition
    assert tools.ServerToolDefinition is messages.ServerToolDefinition
    assert set(tools.__all__) >= {"Tool", "tool", "tool_definitions", "tool_result_content"}


def test_tool_definition_new_gives_an_empty_object_schema() -> None:
    definition = ToolDefinition.new("get_weather", "Get the weather")
    assert definition.to_wire() == {
        "name": "get_weather",
        "description": "Get the weather",
        "input_schema": {"type": "object", "properties": {}},
    }
    cached = ToolDefinition.new("get_weather", cache_control=CacheControl.one_hour())
    assert cached.to_wire()["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_the_package_imports_only_messages_and_itself_from_clust() -> None:
    package = Path(tools.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("clust"):
                    assert name.startswith(("clust.messages", "clust.tools")), (path.name, name)
                assert not name.startswith(("anthropic", "httpx")), (path.name, name)


# --- schemas ------------------------------------------------------------------------------------


def test_required_and_optional_parameters() -> None:
    @tool
    def get_weather(city: str, days: int = 1, metric: bool = True) -> str:
        """Get the weather."""
        return city

    assert get_weather.definition.to_wire() == {
        "name": "get_weather",
        "description": "Get the weather.",
        "input_schema": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "default": 1},
                "metric": {"type": "boolean", "default": True},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    }


def test_a_function_without_parameters_or_docstring() -> None:
    @tool
    def ping() -> str:
        return "pong"

    assert ping.description is None
    assert ping.definition.to_wire() == {
        "name": "ping",
        "input_schema": {"type": "object", "properties": {}, "additionalProperties": False},
    }


def test_enum_and_literal() -> None:
    @tool
    def convert(unit: Unit, mode: Literal["fast", "exact"] = "fast") -> None:
        """Convert."""

    assert _schema(convert) == {
        "type": "object",
        "properties": {
            "unit": {"$ref": "#/$defs/Unit"},
            "mode": {"type": "string", "enum": ["fast", "exact"], "default": "fast"},
        },
        "required": ["unit"],
        "additionalProperties": False,
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "title": "Unit"}},
    }


def test_nested_models_lists_and_optional() -> None:
    @tool
    def deliver(
        to: Address,
        also: list[Address],
        tags: list[str],
        note: Optional[str] = None,  # noqa: UP045 (typing.Optional on purpose)
    ) -> None:
        """Deliver a parcel."""

    address = {
        "type": "object",
        "properties": {
            "street": {"type": "string"},
            "zip": {"type": "string", "minLength": 5},
        },
        "required": ["street", "zip"],
        "title": "Address",
    }
    assert _schema(deliver) == {
        "type": "object",
        "properties": {
            "to": {"$ref": "#/$defs/Address"},
            "also": {"type": "array", "items": {"$ref": "#/$defs/Address"}},
            "tags": {"type": "array", "items": {"type": "string"}},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["to", "also", "tags"],
        "additionalProperties": False,
        "$defs": {"Address": address},
    }


def test_annotated_field_constraints_and_descriptions() -> None:
    @tool
    def search(
        query: Annotated[str, Field(min_length=1, max_length=200, description="What to find.")],
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        score: float = Field(0.5, ge=0, le=1, description="Minimum score."),
    ) -> list[str]:
        """Search the index."""
        return []

    assert _schema(search) == {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "What to find.",
            },
            "limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
            "score": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "default": 0.5,
                "description": "Minimum score.",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }


def test_google_docstring_describes_the_tool_and_its_parameters() -> None:
    @tool
    def get_weather(
        city: str,
        unit: Literal["c", "f"] = "c",
        days: Annotated[int, Field(description="From Field.")] = 1,
    ) -> str:
        """Get the current weather for a city.

        Uses the public forecast service.

        Args:
            city: The city name,
                e.g. "Paris".
            unit (str): Temperature unit.
            days: From the docstring (Field wins).

        Returns:
            A sentence about the weather.
        """
        return city

    assert get_weather.description == (
        "Get the current weather for a city.\n\nUses the public forecast service."
    )
    properties = _schema(get_weather)["properties"]
    assert properties["city"] == {"type": "string", "description": 'The city name, e.g. "Paris".'}
    assert properties["unit"]["description"] == "Temperature unit."
    assert properties["days"]["description"] == "From Field."


def test_numpy_and_rest_docstrings() -> None:
    numpy = parse_docstring(
        """Add two numbers.

        Parameters
        ----------
        a, b : int
            The numbers
            to add.
        scale : float, optional
            Factor.

        Returns
        -------
        int
        """
    )
    assert numpy.description == "Add two numbers."
    assert numpy.params == {
        "a": "The numbers to add.",
        "b": "The numbers to add.",
        "scale": "Factor.",
    }

    rest = parse_docstring(
        """Send a mail.

        :param to: Recipient.
        :param str body: The text,
            plain.
        :returns: nothing
        """
    )
    assert rest.description == "Send a mail."
    assert rest.params == {"to": "Recipient.", "body": "The text, plain."}
    assert parse_docstring(None).description is None
    noted = parse_docstring("Usage: inline, so prose.\n\nNote:\n    Internal detail.")
    assert noted.description == "Usage: inline, so prose."


def test_name_and_description_options_and_cache_control_on_the_wire() -> None:
    @tool(name="weather", description="Weather now.", cache_control=CacheControl())
    def get_weather(city: str) -> str:
        """Ignored docstring."""
        return city

    wire = get_weather.definition.to_wire()
    assert wire["name"] == "weather"
    assert wire["description"] == "Weather now."
    assert wire["cache_control"] == {"type": "ephemeral"}
    assert get_weather.name == "weather"
    assert "cache_control" not in tool(lambda_free).definition.to_wire()


def lambda_free(x: int) -> int:
    return x


def test_parameter_names_that_shadow_pydantic_attributes_and_aliases() -> None:
    @tool
    def odd(
        model_name: str, schema: int, _hidden: bool, from_: Annotated[str, Field(alias="from")]
    ) -> dict[str, Any]:
        """Odd names."""
        return {"model_name": model_name, "schema": schema, "_hidden": _hidden, "from_": from_}

    assert list(_schema(odd)["properties"]) == ["model_name", "schema", "_hidden", "from"]
    arguments = {"model_name": "m", "schema": "2", "_hidden": True, "from": "x"}
    assert odd.call(arguments) == {"model_name": "m", "schema": 2, "_hidden": True, "from_": "x"}


def test_local_types_resolve_through_the_defining_scope() -> None:
    class Point(BaseModel):
        x: int
        y: int

    @tool()
    def move(to: Point) -> Point:
        """Move."""
        return to

    assert _schema(move)["properties"]["to"] == {"$ref": "#/$defs/Point"}
    assert move.call({"to": {"x": "1", "y": 2}}) == Point(x=1, y=2)


def test_schemas_are_deterministic() -> None:
    def build() -> str:
        @tool
        def deliver(to: Address, unit: Unit, tags: list[str] | None = None) -> None:
            """Deliver."""

        return json.dumps(deliver.definition.to_wire())

    assert build() == build()


# --- decoration errors --------------------------------------------------------------------------


def _var_args(*items: int) -> None: ...
def _var_kwargs(**options: int) -> None: ...
def _positional_only(a: int, /, b: int) -> None: ...
def _unannotated(city, unit: str) -> None: ...  # type: ignore[no-untyped-def]
def _method_like(self, x: int) -> None: ...  # type: ignore[no-untyped-def]
def _unknown_name(x: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821
def _callable_param(cb: Callable[[int], int]) -> None: ...


@pytest.mark.parametrize(
    ("function", "fragment"),
    [
        (_var_args, "'*items'"),
        (_var_kwargs, "'**options'"),
        (_positional_only, "'a' is positional-only"),
        (_unannotated, "'city' has no type annotation"),
        (_method_like, "'self'"),
        (_unknown_name, "parameter 'x'"),
        (_callable_param, "parameter 'cb'"),
    ],
)
def test_unsupported_signatures_raise_a_type_error_naming_the_parameter(
    function: Callable[..., Any], fragment: str
) -> None:
    with pytest.raises(TypeError) as caught:
        tool(function)
    assert fragment in str(caught.value)
    assert function.__qualname__ in str(caught.value)


def test_only_plain_functions_can_be_tools() -> None:
    class Thing:
        def run(self, x: int) -> int:
            return x

    with pytest.raises(TypeError, match="plain function"):
        tool(Thing().run)
    with pytest.raises(TypeError, match="plain function"):
        tool(Thing)


def test_invalid_name_or_timeout_is_an_invalid_parameter() -> None:
    with pytest.raises(InvalidParameter, match=r"tools\.name"):
        tool(name="no spaces allowed")(lambda_free)
    with pytest.raises(InvalidParameter, match="timeout"):
        tool(timeout=0)(lambda_free)
    with pytest.raises(InvalidParameter, match="timeout"):
        tool(timeout=-1.5)(lambda_free)


# --- the Tool object ----------------------------------------------------------------------------


def test_attributes_and_direct_calls() -> None:
    @tool(idempotent=True, timeout=5)
    def get_weather(city: str, unit: str = "c") -> str:
        """Get the weather."""
        return f"{city}:{unit}"

    assert isinstance(get_weather, Tool)
    assert (get_weather.name, get_weather.idempotent, get_weather.timeout) == (
        "get_weather",
        True,
        5.0,
    )
    assert get_weather.is_async is False
    assert get_weather(city="Paris") == "Paris:c"
    assert get_weather("Oslo", "f") == "Oslo:f"
    assert get_weather.__name__ == "get_weather"
    assert get_weather.__doc__ == "Get the weather."
    assert get_weather.__wrapped__ is get_weather.function
    assert tool(lambda_free).timeout is None
    assert tool(lambda_free).idempotent is False


def test_validate_coerces_fills_defaults_and_builds_models() -> None:
    @tool
    def deliver(to: Address, count: int, unit: Unit = Unit.CELSIUS) -> None:
        """Deliver."""

    arguments = deliver.validate({"to": {"street": "Main", "zip": "12345"}, "count": "3"})
    assert arguments == {
        "to": Address(street="Main", zip="12345"),
        "count": 3,
        "unit": Unit.CELSIUS,
    }
    assert deliver.validate({"to": arguments["to"], "count": 1, "unit": "f"})["unit"] is (
        Unit.FAHRENHEIT
    )


def test_validation_errors_name_each_field_and_what_is_wrong() -> None:
    @tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        """Weather."""
        raise AssertionError("never called")

    with pytest.raises(ToolInputError) as caught:
        get_weather.call({"unit": "k"})
    error = caught.value
    assert error.tool_name == "get_weather"
    assert error.problems == ("city: Field required", "unit: Input should be 'c' or 'f'")
    assert str(error) == (
        "invalid input for tool 'get_weather': city: Field required; "
        "unit: Input should be 'c' or 'f'"
    )
    assert isinstance(error, ToolError)
    assert isinstance(error, MessagesError)
    assert isinstance(error, ValueError)

    with pytest.raises(ToolInputError, match=r"country: Extra inputs are not permitted"):
        get_weather.validate({"city": "Paris", "country": "FR"})
    with pytest.raises(ToolInputError, match=r"input: Input should be a JSON object"):
        get_weather.validate(["Paris"])  # type: ignore[arg-type]


def test_nested_validation_errors_give_the_path() -> None:
    @tool
    def deliver(to: Address, also: list[Address]) -> None:
        """Deliver."""

    with pytest.raises(ToolInputError) as caught:
        deliver.validate(
            {"to": {"street": "Main", "zip": "1"}, "also": [{"street": "X", "zip": "12345"}, {}]}
        )
    assert caught.value.problems == (
        "to.zip: String should have at least 5 characters",
        "also.1.street: Field required",
        "also.1.zip: Field required",
    )


def test_call_runs_a_sync_tool_and_refuses_an_async_one() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    @tool
    async def slow_add(a: int, b: int) -> int:
        """Add, slowly."""
        return a + b

    assert add.call({"a": 1, "b": "2"}) == 3
    assert slow_add.is_async is True
    with pytest.raises(TypeError, match=r"acall"):
        slow_add.call({"a": 1, "b": 2})


@pytest.mark.anyio
async def test_acall_awaits_async_tools_and_validates_first() -> None:
    calls: list[int] = []

    @tool
    async def double(n: int) -> int:
        """Double."""
        await anyio.sleep(0)
        calls.append(n)
        return 2 * n

    assert await double.acall({"n": "21"}) == 42
    with pytest.raises(ToolInputError, match="n: Input should be a valid integer"):
        await double.acall({"n": "many"})
    assert calls == [21]
    assert await double(n=1) == 2


@pytest.mark.anyio
async def test_acall_runs_a_sync_tool_in_a_worker_thread() -> None:
    @tool
    def where(label: str) -> tuple[str, int]:
        """Which thread am I on."""
        return label, threading.get_ident()

    label, ident = await where.acall({"label": "x"})
    assert label == "x"
    assert ident != threading.get_ident()


@pytest.mark.anyio
async def test_a_cancelled_sync_tool_stops_blocking_its_caller_at_once() -> None:
    release = threading.Event()

    @tool
    def stuck() -> str:
        """Wait until released."""
        release.wait(10)
        return "done"

    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.1):
                await stuck.acall({})
        assert time.monotonic() - started < 5
    finally:
        release.set()


# --- errors -------------------------------------------------------------------------------------


def test_tool_errors_are_exported_sorted_and_pickle() -> None:
    names = ["ToolError", "ToolInputError", "ToolTimeout", "UnknownTool"]
    assert set(names) <= set(error_module.__all__)
    assert error_module.__all__ == sorted(error_module.__all__)
    assert all(getattr(messages, name) is getattr(error_module, name) for name in names)

    timeout = ToolTimeout("slow", 2.5)
    assert str(timeout) == "tool 'slow' did not finish within 2.5 seconds"
    unknown = UnknownTool("nope", ["a", "b"])
    assert str(unknown) == "unknown tool 'nope'; available tools: 'a', 'b'"
    assert isinstance(unknown, LookupError)
    for error in (
        timeout,
        unknown,
        ToolInputError("t", ["x: Field required"]),
        ToolError("t", "it broke"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.tool_name == error.tool_name


# --- tool_result_content ------------------------------------------------------------------------


class Forecast(BaseModel):
    city: str
    when: datetime.date


def test_tool_result_content_strings_and_none() -> None:
    assert tool_result_content("sunny") == "sunny"
    assert tool_result_content("") == ""
    assert tool_result_content(None) == ""


def test_tool_result_content_keeps_blocks() -> None:
    text = TextContentBlock.new("hi")
    image = ImageContentBlock.from_url("https://example.com/a.png")
    document = DocumentContentBlock.from_text("doc")
    reference = ToolReferenceContentBlock(tool_name="other")
    assert tool_result_content(text) == [text]
    assert tool_result_content([text, image, document]) == [text, image, document]
    assert tool_result_content((reference,)) == [reference]
    mixed = tool_result_content(["Chart:", image])
    assert mixed == [TextContentBlock.new("Chart:"), image]


def test_tool_result_content_json_encodes_data() -> None:
    assert tool_result_content({"temp": 21.5, "city": "Zürich"}) == '{"temp":21.5,"city":"Zürich"}'
    assert tool_result_content([1, 2, 3]) == "[1,2,3]"
    assert tool_result_content([]) == "[]"
    assert tool_result_content(42) == "42"
    assert tool_result_content(True) == "true"
    assert tool_result_content(Reading("Oslo", -3.0)) == '{"city":"Oslo","degrees":-3.0}'
    forecast = Forecast(city="Köln", when=datetime.date(2026, 1, 2))
    assert tool_result_content(forecast) == json.dumps(
        forecast.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")
    )
    assert tool_result_content({"unit": Unit.CELSIUS}) == '{"unit":"c"}'


def test_tool_result_content_refuses_what_it_cannot_send() -> None:
    with pytest.raises(TypeError, match="ToolUseContentBlock cannot be a tool result"):
        tool_result_content(ToolUseContentBlock.new("toolu_1", "x", {}))
    with pytest.raises(TypeError, match="ThinkingContentBlock"):
        tool_result_content([ThinkingContentBlock(thinking="t", signature="s")])
    with pytest.raises(TypeError, match="mixes content blocks"):
        tool_result_content([TextContentBlock.new("a"), {"b": 1}])
    with pytest.raises(TypeError, match="cannot be sent as a tool result"):
        tool_result_content(object())


# --- tool_definitions ---------------------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """Get the weather."""
    return f"sunny in {city}"


@tool(cache_control=CacheControl())
async def get_time(zone: Annotated[str, Field(description="IANA zone")] = "UTC") -> str:
    """Current time in a zone."""
    return "12:00"


def test_tool_definitions_mixes_every_kind() -> None:
    web_search = ServerToolDefinition.new("web_search_20260318", "web_search", max_uses=3)
    custom = ToolDefinition.new("lookup", "Look up a word")
    raw = {"type": "code_execution_20260120", "name": "code_execution"}
    toolset = {"type": "browser_toolset_20260801"}
    result = tool_definitions([get_weather, web_search, custom, raw, toolset, toolset])
    assert result[0] is get_weather.definition
    assert result[1] is web_search
    assert result[2] is custom
    assert [d.to_wire() for d in result[3:]] == [raw, toolset, toolset]
    assert tool_definitions([]) == []


def test_tool_definitions_refuses_duplicate_names() -> None:
    with pytest.raises(InvalidParameter, match="'get_weather'") as caught:
        tool_definitions([get_weather, get_time, ToolDefinition.new("get_weather")])
    assert caught.value.field == "tools.2.name"
    assert "tools.0" in str(caught.value)
    with pytest.raises(InvalidParameter, match="'web_search'"):
        tool_definitions(
            [
                {"type": "web_search_20260318", "name": "web_search"},
                ServerToolDefinition.new("web_search_20250305", "web_search"),
            ]
        )


def test_tool_definitions_refuses_what_is_not_a_tool() -> None:
    with pytest.raises(InvalidParameter, match=r"tools\.0"):
        tool_definitions([{"name": "x"}])  # a custom tool without input_schema
    with pytest.raises(InvalidParameter, match=r"tools\.1"):
        tool_definitions([get_weather, 42])  # type: ignore[list-item]


def test_request_with_decorated_tools_is_accepted_by_fake_claude() -> None:
    @tool
    def deliver(to: Address, unit: Unit, note: str | None = None) -> str:
        """Deliver a parcel.

        Args:
            to: Destination.
        """
        return "ok"

    definitions = tool_definitions(
        [
            get_weather,
            get_time,
            deliver,
            ServerToolDefinition.new("web_search_20260318", "web_search", max_uses=2),
        ]
    )
    body = MessagesRequestBody(
        model="claude-sonnet-5-5",
        max_tokens=100,
        messages=[Message.user("hi")],
        tools=definitions,
    )
    with FakeClaude() as fake, Client(api_key="k", base_url=fake.base_url) as client:
        response = client.create_a_message(body)
        sent = fake.last_request.body["tools"]
    assert response.content
    assert sent == [d.to_wire() for d in definitions]
    assert sent[1]["cache_control"] == {"type": "ephemeral"}
    assert sent[1]["input_schema"]["properties"]["zone"]["description"] == "IANA zone"
    assert sent[2]["input_schema"] == _schema(deliver)
    assert sent[2]["input_schema"]["properties"]["to"] == {
        "$ref": "#/$defs/Address",
        "description": "Destination.",
    }
    assert sent[3] == {"type": "web_search_20260318", "name": "web_search", "max_uses": 2}
