"""Models API over real sockets: paginated listing, get by id or alias, table refresh."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from support import simple_body

from clust import AsyncClient, Client
from clust.messages import (
    InvalidParameter,
    MaxTokens,
    MessagesRequestBody,
    ModelInfo,
    ModelLifecycle,
    NotFoundError,
    claude_models,
    model_limits,
)
from clust.testing import DEFAULT_MODELS, FakeClaude
from clust.testing import ModelInfo as FakeModel

ACTIVE_AND_DEPRECATED = [m.id for m in DEFAULT_MODELS if m.lifecycle != "retired"]


def listed_pages(fake: FakeClaude) -> list[Mapping[str, list[str]]]:
    return [r.query for r in fake.requests if r.path == "/v1/models"]


def test_list_models_walks_every_page_lazily(client: Client, fake: FakeClaude) -> None:
    models = client.list_models(limit=5)
    assert fake.requests == []  # nothing is sent before iteration
    first = next(models)
    assert isinstance(first, ModelInfo)
    assert first.id == "claude-opus-5-5"
    assert len(fake.requests) == 1
    rest = list(models)
    assert [first.id] + [m.id for m in rest] == ACTIVE_AND_DEPRECATED
    pages = listed_pages(fake)
    assert len(pages) == -(-len(ACTIVE_AND_DEPRECATED) // 5)  # ceil: 4 pages of 5
    assert pages[0] == {"limit": ["5"]}
    assert pages[1] == {"limit": ["5"], "after_id": [ACTIVE_AND_DEPRECATED[4]]}
    headers = fake.requests[0].headers
    assert "content-type" not in headers  # a GET carries no body
    assert headers["authorization"] == "Bearer test-key"


def test_list_models_fields_are_typed(client: Client) -> None:
    by_id = {m.id: m for m in client.list_models(limit=1000)}
    haiku = by_id["claude-haiku-4-5-20251001"]
    assert haiku.max_output_tokens == 64_000 and haiku.context_window == 200_000
    assert haiku.created_at.year == 2025
    assert haiku.lifecycle is ModelLifecycle.ACTIVE
    assert haiku.capabilities is not None and haiku.capabilities.batch is not None
    assert haiku.capabilities.batch.supported is True
    assert haiku.capabilities.thinking is not None
    assert haiku.capabilities.thinking.feature("types", "enabled") is True
    assert haiku.capabilities.thinking.feature("types", "nonexistent") is None
    sonnet_45 = by_id["claude-sonnet-4-5-20250929"]
    assert sonnet_45.lifecycle == "deprecated" and sonnet_45.retires_at is not None
    assert sonnet_45.max_tokens is None  # unknown limits stay None


def test_list_models_lifecycle_and_backwards(client: Client, fake: FakeClaude) -> None:
    retired = [m.id for m in client.list_models(lifecycle=["retired"])]
    assert retired == ["claude-mythos-preview"]
    assert fake.last_request.query["lifecycle[]"] == ["retired"]
    everything = [m.id for m in client.list_models(lifecycle=("active", "deprecated", "retired"))]
    assert len(everything) == len(DEFAULT_MODELS)
    fake.clear()
    # Start before the last model and page backwards, two at a time.
    last = ACTIVE_AND_DEPRECATED[-1]
    backwards = [m.id for m in client.list_models(limit=2, before_id=last)]
    assert sorted(backwards) == sorted(ACTIVE_AND_DEPRECATED[:-1])
    assert all("after_id" not in q for q in listed_pages(fake))
    assert len(listed_pages(fake)) == -(-(len(ACTIVE_AND_DEPRECATED) - 1) // 2)


def test_list_models_after_id(client: Client) -> None:
    after = [m.id for m in client.list_models(after_id=ACTIVE_AND_DEPRECATED[2])]
    assert after == ACTIVE_AND_DEPRECATED[3:]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": True}, "limit"),
        ({"after_id": "a", "before_id": "b"}, "before_id"),
        ({"after_id": ""}, "after_id"),
    ],
)
def test_list_models_bad_arguments_fail_before_the_network(
    client: Client, fake: FakeClaude, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        client.list_models(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert fake.requests == []


def test_get_model_by_id_and_alias(client: Client, fake: FakeClaude) -> None:
    assert client.get_model("claude-opus-5-5").display_name == "Claude Opus 5.5"
    resolved = client.get_model("claude-haiku-4-5")
    assert resolved.id == "claude-haiku-4-5-20251001"
    assert fake.last_request.path == "/v1/models/claude-haiku-4-5"
    with pytest.raises(NotFoundError) as caught:
        client.get_model("claude-nope")
    assert caught.value.status_code == 404
    assert caught.value.request_id is not None
    with pytest.raises(InvalidParameter):
        client.get_model("")


@pytest.fixture
def restore_models_table() -> Iterator[None]:
    saved = dict(claude_models._LIMITS)
    yield
    claude_models._LIMITS.clear()
    claude_models._LIMITS.update(saved)


NEW_MODEL = FakeModel(
    "claude-future-9", "Claude Future 9", "2027-01-01T00:00:00Z", "opus", 2_000_000, 256_000
)


@pytest.mark.usefixtures("restore_models_table")
def test_refresh_models_teaches_max_tokens_new_models() -> None:
    with (
        FakeClaude(models=[NEW_MODEL, *DEFAULT_MODELS]) as fake,
        Client(api_key="k", base_url=fake.base_url) as client,
    ):
        assert model_limits("claude-future-9") is None
        MaxTokens(10**6, "claude-future-9")  # unknown model: no upper bound known
        refreshed = client.refresh_models()
        assert refreshed["claude-future-9"].max_output_tokens == 256_000
        assert refreshed["claude-future-9"].context_window == 2_000_000
        limits = model_limits("claude-future-9")
        assert limits is not None and limits.context_window == 2_000_000
        with pytest.raises(InvalidParameter, match=r"0\.\.256000"):
            MaxTokens(256_001, "claude-future-9")
        with pytest.raises(InvalidParameter):
            MessagesRequestBody(
                model="claude-future-9", max_tokens=300_000, messages=simple_body().messages
            )
        # Null limits keep what the shipped table knew (min_cacheable_tokens too).
        assert refreshed["claude-opus-4-7"].min_cacheable_tokens == 2_048
        assert fake.last_request.query["limit"] == ["1000"]


@pytest.mark.anyio
async def test_async_list_and_get(aclient: AsyncClient, fake: FakeClaude) -> None:
    ids = [m.id async for m in aclient.list_models(limit=3)]
    assert ids == ACTIVE_AND_DEPRECATED
    assert len(listed_pages(fake)) == -(-len(ids) // 3)
    model = await aclient.get_model("claude-sonnet-5-5")
    assert model.max_tokens == 128_000
    with pytest.raises(InvalidParameter):
        aclient.list_models(limit=5000)


@pytest.mark.anyio
@pytest.mark.usefixtures("restore_models_table")
async def test_async_refresh_models() -> None:
    async with (
        FakeClaude(models=[NEW_MODEL]) as fake,
        AsyncClient(api_key="k", base_url=fake.base_url) as client,
    ):
        refreshed = await client.refresh_models()
        assert list(refreshed) == ["claude-future-9"]
        assert MaxTokens(256_000, "claude-future-9") == 256_000


def test_count_tokens_sync_and_for_a_listed_model(client: Client, fake: FakeClaude) -> None:
    count = client.count_tokens(simple_body(system="Be brief."))
    assert count.input_tokens > 0
    assert fake.last_request.path == "/v1/messages/count_tokens"


@pytest.mark.anyio
async def test_count_tokens_async(aclient: AsyncClient) -> None:
    short = await aclient.count_tokens(simple_body("Hi"))
    longer = await aclient.count_tokens(simple_body("Hi " * 200))
    assert longer.input_tokens > short.input_tokens > 0


@pytest.mark.anyio
async def test_async_listing_can_be_left_half_way(aclient: AsyncClient, fake: FakeClaude) -> None:
    async for model in aclient.list_models(limit=2):
        assert model.id == ACTIVE_AND_DEPRECATED[0]
        break
    assert len(listed_pages(fake)) == 1
    batches = aclient.list_message_batches(limit=1)
    assert [b async for b in batches] == []
