"""The awaitable Store: ``Store.aopen``, the ``a``-prefixed operations, ``threads=``.

Each awaitable form runs its sync form in a worker thread of ``store.offload``, at
most ``threads`` at once per event loop (not anyio's process-wide 40), with a
connection pool sized so those threads never wait for a connection.
"""

from __future__ import annotations

import fcntl
import inspect
import itertools
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import event, text

from clust import AsyncClient, Store
from clust.conversation.offload import Offload
from clust.conversation.store import StoreOptions
from clust.messages import ConversationNotFound, InvalidParameter, StoreError
from clust.store.engine import reading
from clust.store.migrate import is_current

MODEL = "claude-sonnet-5-5"


@pytest.fixture
def many_connections() -> Iterator[None]:
    """Tests that open dozens of PostgreSQL connections take turns across xdist
    workers, so that together they stay under the server's ``max_connections``."""
    lock = Path(tempfile.gettempdir()) / "clust-test-many-connections.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture
async def astore(db_url: str) -> AsyncIterator[Store]:
    async with await Store.aopen(db_url) as opened:
        yield opened


class Concurrency:
    """Counts calls running at once; the largest count is ``peak``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self.now -= 1


async def gather(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    async def one(index: int) -> None:
        results[index] = await calls[index]()

    async with anyio.create_task_group() as tasks:
        for index in range(len(calls)):
            tasks.start_soon(one, index)
    return results


# -- the awaitable forms ---------------------------------------------------------------


def test_every_sync_operation_has_an_awaitable_form_with_the_same_parameters() -> None:
    sync_methods = [
        name
        for name, member in vars(Store).items()
        if not name.startswith("_")
        and inspect.isfunction(member)
        and not inspect.iscoroutinefunction(member)
    ]
    assert "get_conversation" in sync_methods and "open_batches" in sync_methods
    for name in sync_methods:
        form = getattr(Store, f"a{name}")
        assert inspect.iscoroutinefunction(form), name
        sync_params = list(inspect.signature(getattr(Store, name)).parameters.values())
        async_params = list(inspect.signature(form).parameters.values())
        assert [p.name for p in async_params] == [p.name for p in sync_params], name
        assert [p.default for p in async_params] == [p.default for p in sync_params], name
    awaitable_form = Store.aget_conversation
    assert awaitable_form.__name__ == "aget_conversation"
    assert (awaitable_form.__doc__ or "").startswith("Awaitable form of :meth:`get_conversation`")
    # Store.aopen takes the url and Store's keywords, typed by StoreOptions.
    init = list(inspect.signature(Store.__init__).parameters.values())[1:]
    keywords = {p.name for p in init if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == StoreOptions.__optional_keys__
    assert [p.name for p in init if p.kind is not inspect.Parameter.KEYWORD_ONLY] == ["url"]


@pytest.mark.anyio
async def test_the_awaitable_forms_do_what_the_sync_forms_do(
    astore: Store, aclient: AsyncClient
) -> None:
    conv = await astore.acreate_conversation(
        model=MODEL, max_tokens=64, metadata={"team": "red"}, title="first"
    )
    await conv.asend(aclient, "hello")
    other = await astore.acreate_conversation(model=MODEL, max_tokens=64, metadata={"team": "blue"})

    opened = await astore.aget_conversation(conv.id)
    assert (opened.id, opened.title, opened.metadata) == (conv.id, "first", {"team": "red"})
    assert [m.role for m in opened.history] == ["user", "assistant"]

    listed = await astore.alist_conversations(limit=10)
    assert [c.id for c in listed] == [c.id for c in astore.list_conversations(limit=10)]
    assert [c.id for c in listed] == [other.id, conv.id]
    red = await astore.alist_conversations(metadata={"team": "red"})
    assert [c.id for c in red] == [conv.id]
    with pytest.raises(InvalidParameter):
        await astore.alist_conversations(limit=0)

    fork = await astore.afork(conv.id, 1)
    assert (fork.parent_id, fork.fork_position) == (conv.id, 1)
    assert [m.role for m in fork.history] == ["user"]
    by_object = await astore.afork(conv, 2)
    assert [m.text() for m in by_object.history] == [m.text() for m in conv.history]

    document = await astore.aexport_conversation(conv.id)
    assert document == astore.export_conversation(conv)
    imported = await astore.aimport_conversation(document)
    assert imported.id != conv.id
    assert [m.text() for m in imported.history] == [m.text() for m in conv.history]
    with pytest.raises(StoreError):
        await astore.aimport_conversation(document, keep_id=True)  # the id exists

    await astore.adelete_conversation(conv.id)
    with pytest.raises(ConversationNotFound):
        await astore.aget_conversation(conv.id)
    with pytest.raises(ConversationNotFound):
        await astore.adelete_conversation(conv.id)

    assert await astore.abatches() == astore.batches() == []
    assert await astore.aopen_batches() == []
    with pytest.raises(InvalidParameter):
        await astore.abatches(state="nope")
    with pytest.raises(StoreError):
        await astore.aget_batch("no-such-batch")


@pytest.mark.anyio
async def test_aclose_releases_the_pool_and_async_with_closes(db_url: str) -> None:
    async with await Store.aopen(db_url) as store:
        await store.aget_conversation(
            (await store.acreate_conversation(model=MODEL, max_tokens=8)).id
        )
        pool: Any = store.engine.pool
        assert pool.checkedin() >= 1  # a connection waits in the pool
    fresh: Any = store.engine.pool
    assert fresh is not pool  # disposed: a fresh, empty pool replaced it
    assert fresh.checkedin() == 0


@pytest.mark.anyio
async def test_threads_must_be_a_positive_number(db_url: str) -> None:
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidParameter) as caught:
            await Store.aopen(db_url, threads=bad)  # type: ignore[arg-type]
        assert caught.value.field == "threads"
        with pytest.raises(InvalidParameter):
            Store(db_url, threads=bad)  # type: ignore[arg-type]


# -- opening without blocking the event loop --------------------------------------------


@pytest.mark.anyio
async def test_aopen_migrates_a_fresh_database_while_the_event_loop_keeps_running(
    db_url: str,
) -> None:
    ticks: list[float] = []
    opening: list[float] = []

    async def heartbeat() -> None:
        while True:
            ticks.append(time.perf_counter())
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(heartbeat)
        await anyio.sleep(0.02)
        opening.append(time.perf_counter())
        store = await Store.aopen(db_url)
        opening.append(time.perf_counter())
        await anyio.sleep(0.02)
        tasks.cancel_scope.cancel()
    try:
        assert is_current(store.engine)
    finally:
        await store.aclose()
    started, finished = opening
    during = [tick for tick in ticks if started < tick < finished]
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    # A blocking open would let no tick through while it migrates (one gap as long as
    # the migration); in a worker thread the loop keeps ticking.
    assert len(during) >= 2, (finished - started, during)
    assert max(gaps) < 0.1, (max(gaps), finished - started)


# -- threads= ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_threads_caps_how_many_calls_run_at_once(db_url: str) -> None:
    counting = Concurrency()

    def slow() -> None:
        with counting:
            time.sleep(0.02)

    async with await Store.aopen(db_url, threads=3) as store:
        assert store.offload.threads == 3
        await gather([lambda: store.offload.run(slow) for _ in range(15)])
        assert counting.peak == 3

        # The store's own calls hold at most `threads` connections at once.
        conv = await store.acreate_conversation(model=MODEL, max_tokens=8)
        held = Concurrency()
        event.listen(store.engine, "checkout", lambda *_: held.__enter__())
        event.listen(store.engine, "checkin", lambda *_: held.__exit__())
        await gather([lambda: store.aget_conversation(conv.id) for _ in range(60)])
        assert 1 <= held.peak <= 3


@pytest.mark.anyio
async def test_threads_above_anyio_default_of_40_all_run_at_once(db_url: str) -> None:
    parties = 50
    barrier = threading.Barrier(parties, timeout=10)  # broken if only 40 could run

    async with await Store.aopen(db_url, threads=parties) as store:
        await gather([lambda: store.offload.run(barrier.wait) for _ in range(parties)])
    assert barrier.n_waiting == 0 and not barrier.broken


@pytest.mark.anyio
@pytest.mark.usefixtures("many_connections")
async def test_each_worker_thread_gets_a_connection_from_the_pool(db_url: str) -> None:
    parties = 30  # SQLAlchemy's default pool would hold 15 (5 + 10 overflow)
    barrier = threading.Barrier(parties, timeout=10)

    def hold_a_connection() -> int:
        with reading(store.engine) as connection:
            value = int(connection.execute(text("SELECT 1")).scalar_one())
            barrier.wait()  # every thread holds its connection at this point
        return value

    async with await Store.aopen(db_url, threads=parties) as store:
        assert store.engine.pool.size() == parties  # type: ignore[attr-defined]
        results = await gather([lambda: store.offload.run(hold_a_connection)] * parties)
    assert results == [1] * parties


@pytest.mark.anyio
@pytest.mark.usefixtures("many_connections")
async def test_200_concurrent_reads_with_64_threads_all_succeed(db_url: str) -> None:
    async with await Store.aopen(db_url, threads=64) as store:
        conv = await store.acreate_conversation(model=MODEL, max_tokens=8, title="read me")
        reads: list[Callable[[], Awaitable[Any]]] = []
        for index in range(200):
            if index % 2:
                reads.append(lambda: store.aget_conversation(conv.id))
            else:
                reads.append(lambda: store.alist_conversations(limit=5))
        results = await gather(reads)
    assert [r.title for r in results[1::2]] == ["read me"] * 100
    assert [[c.id for c in r] for r in results[::2]] == [[conv.id]] * 100


@pytest.mark.anyio
@pytest.mark.usefixtures("many_connections")
async def test_500_concurrent_writers_wait_their_turn_instead_of_failing(db_url: str) -> None:
    async with await Store.aopen(db_url, threads=32) as store:
        created = await gather(
            [
                partial(store.acreate_conversation, model=MODEL, max_tokens=8, metadata={"n": n})
                for n in range(500)
            ]
        )
        await gather([partial(store.adelete_conversation, conv.id) for conv in created[:250]])
        left = await store.alist_conversations(limit=1000)
    assert sorted(c.metadata["n"] for c in left) == list(range(250, 500))


# -- one limiter per event loop ----------------------------------------------------------


def test_each_event_loop_gets_its_own_limiter_asyncio_and_trio_at_once() -> None:
    offload = Offload(threads=2)
    barrier = threading.Barrier(4, timeout=10)  # 2 per loop: needs both loops' threads
    peaks: dict[str, int] = {}
    errors: list[BaseException] = []

    def in_loop(backend: str) -> None:
        counting = Concurrency()

        def slow() -> None:
            with counting:
                barrier.wait()
                time.sleep(0.01)

        async def main() -> None:
            await gather([lambda: offload.run(slow) for _ in range(6)])

        try:
            for _ in range(2):  # a second run of the same backend: a new loop, a new limiter
                anyio.run(main, backend=backend)
        except BaseException as exc:
            errors.append(exc)
        peaks[backend] = counting.peak

    threads = [threading.Thread(target=in_loop, args=(b,)) for b in ("asyncio", "trio")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert peaks == {"asyncio": 2, "trio": 2}
