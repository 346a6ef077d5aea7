"""``Store``: where conversations live (SQLite file or PostgreSQL), and how to find them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypedDict

import anyio
import anyio.lowlevel
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from typing_extensions import Unpack

from clust.conversation.batching import batch_key, listing, load, refresh
from clust.conversation.caching import CachePolicy
from clust.conversation.conversation import Conversation
from clust.conversation.drivers import async_call, blocking_call
from clust.conversation.effects import CallOptions
from clust.conversation.history import RequestHead
from clust.conversation.offload import DEFAULT_THREADS, Offload, awaitable
from clust.conversation.turns import utcnow
from clust.conversation.window import RaiseOnOverflow, TruncationStrategy
from clust.messages import storable
from clust.messages.errors import ConversationNotFound, InvalidParameter, StoreError
from clust.store import repository as rows
from clust.store.engine import make_engine, reading, transaction
from clust.store.faults import DEFAULT_RECONNECT, watch
from clust.store.migrate import is_current
from clust.store.migrate import upgrade as upgrade_schema
from clust.usage.budget import Budget, Spending
from clust.usage.pricing import PriceTable

if TYPE_CHECKING:
    from clust.client import TimeoutTypes
    from clust.conversation.batching import BatchCollection, StoredBatch
    from clust.messages.batches import MessageBatch
    from clust.messages.message import Message, MessageContent
    from clust.protocol.plans import Plan

__all__ = ["Store", "StoreOptions"]

_DEFAULT_CACHE = CachePolicy()
_DEFAULT_TRUNCATION = RaiseOnOverflow()
_SCALARS = (str, int, float, bool, type(None))


class StoreOptions(TypedDict, total=False):
    """The keyword arguments of :class:`Store` (for :meth:`Store.aopen`)."""

    upgrade: bool
    lease_seconds: float
    busy_timeout: float
    reconnect_seconds: float
    engine: Engine | None
    budgets: Sequence[Budget]
    prices: PriceTable | None
    cache: CachePolicy | None
    truncation: TruncationStrategy | None
    threads: int


class Store:
    """Conversations persisted in SQLite or PostgreSQL.

    >>> store = Store("sqlite:///chat.db")                     # doctest: +SKIP
    >>> conv = store.create_conversation(model="claude-sonnet-5-5", max_tokens=1024)
    >>> reply = conv.send(client, "Hello")                      # doctest: +SKIP
    >>> same = store.get_conversation(conv.id)                  # later, any process

    Every operation has an awaitable form, its name prefixed with ``a``
    (``await store.aget_conversation(id)``), which runs the same code in a worker
    thread of :attr:`offload`, so an asyncio or trio application never blocks its
    event loop on the database. Open and close a store the same way::

        async with await Store.aopen("postgresql+psycopg://...") as store:
            conv = await store.acreate_conversation(model=..., max_tokens=1024)

    A prefix rather than a separate ``AsyncStore`` class: one object holds one pool
    and one set of settings whichever style calls it, and the names are those of
    ``send``/``asend`` and ``run``/``arun``.

    Args:
        url: an SQLAlchemy URL: ``sqlite:///path.db`` or ``postgresql+psycopg://...``
            (the driver: ``pip install 'psycopg[binary]'``).
        upgrade: bring the schema to the current revision on open (default); with
            ``False`` an out-of-date schema raises :class:`StoreError` (run
            ``clust db upgrade``).
        lease_seconds: the length of a send's lease on its conversation (one send in
            flight per conversation, across processes). While the sender lives, a
            daemon thread of its process renews the lease every third of this, however
            long the request or the tool step takes; a sender that died stops renewing,
            so its lease runs out within ``lease_seconds`` (30 by default) and another
            process may take the conversation over. On PostgreSQL lease times come from
            the database server's clock. An operator frees a conversation at once with
            :meth:`break_lease` (``clust conversations break-lease ID``).
        busy_timeout: seconds an SQLite writer waits for the write lock.
        reconnect_seconds: how long a send's database steps are tried again while the
            database cannot be reached; past it a billed reply is raised in
            :class:`~clust.messages.ReplyNotStored`, never dropped.
        engine: an existing SQLAlchemy engine instead of ``url`` (its owner disposes
            it); clust adds its typed errors and connection checks to it.
        budgets: spending limits (:class:`~clust.usage.Budget`) checked before every
            request of this store's conversations; one that would be passed raises
            :class:`~clust.messages.BudgetExceeded` and nothing is sent or stored.
        prices: the prices budgets and ``conversation.usage()`` costs are counted with
            (default: the shipped list prices).
        cache: the automatic cache breakpoints of this store's conversations
            (:class:`~clust.conversation.CachePolicy`, default on; ``None`` places none).
            Each conversation's ``cache`` attribute can replace it; markers are added
            to requests only, never to the stored history.
        truncation: what this store's conversations do when a request would not fit
            the model's context window (:mod:`clust.conversation.window`): by default
            :class:`~clust.conversation.RaiseOnOverflow` raises
            :class:`~clust.messages.ContextWindowExceeded`;
            :class:`~clust.conversation.DropOldest` and
            :class:`~clust.conversation.Summarize` send fewer turns (stored turns stay);
            ``None`` checks nothing. Each conversation's ``truncation`` can replace it.
        threads: how many awaitable calls of this store (and its conversations) run
            at once in each event loop, each in a worker thread of its own; the others
            wait their turn. The connection pool keeps as many connections (plus 10
            for sync callers), so a thread never waits for one. Default 16
            (:data:`~clust.conversation.offload.DEFAULT_THREADS`): a database step is
            short, and more threads than cores contend with the event loop. anyio's
            own limit of 40 threads for the process does not apply. With ``engine=``,
            size its pool yourself.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        upgrade: bool = True,
        lease_seconds: float = 30.0,
        busy_timeout: float = 30.0,
        reconnect_seconds: float = DEFAULT_RECONNECT,
        engine: Engine | None = None,
        budgets: Sequence[Budget] = (),
        prices: PriceTable | None = None,
        cache: CachePolicy | None = _DEFAULT_CACHE,
        truncation: TruncationStrategy | None = _DEFAULT_TRUNCATION,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        if (url is None) == (engine is None):
            raise InvalidParameter("url", url, "exactly one of url= or engine=")
        self.offload = Offload(threads)
        """Runs this store's awaitable calls in worker threads (``threads`` at once)."""
        if lease_seconds <= 0:
            raise InvalidParameter("lease_seconds", lease_seconds, "a number of seconds > 0")
        if reconnect_seconds < 0:
            raise InvalidParameter("reconnect_seconds", reconnect_seconds, "seconds >= 0")
        self._owns_engine = engine is None
        if engine is not None:
            watch(engine, reconnect_seconds)
        self._engine = engine or make_engine(
            url or "",
            busy_timeout=busy_timeout,
            connections=threads,
            reconnect_seconds=reconnect_seconds,
        )
        self._lease = timedelta(seconds=lease_seconds)
        self._cache = cache
        self._truncation = truncation
        self._prices = prices
        self._spending = (
            Spending(tuple(budgets), prices or PriceTable.default()) if budgets else None
        )
        try:
            if not is_current(self._engine):
                if not upgrade:
                    raise StoreError(
                        "the database's clust schema is missing or out of date: "
                        "run `clust db upgrade --url ...` or open the Store with upgrade=True"
                    )
                upgrade_schema(self._engine)
        except BaseException:
            self.close()  # no pooled connection outlives a Store that failed to open
            raise

    @classmethod
    async def aopen(cls, url: str | None = None, **options: Unpack[StoreOptions]) -> Store:
        """``Store(...)`` opened in a worker thread: connecting and migrating a new
        database (seconds on PostgreSQL) do not block the event loop. Takes the
        arguments of :class:`Store`. The store is an async context manager:
        ``async with await Store.aopen(url) as store:``."""
        opened: list[Store] = []

        def open_store() -> None:
            opened.append(cls(url, **options))

        try:
            await Offload(options.get("threads", DEFAULT_THREADS)).run(open_store)
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            for store in opened:  # cancelled while it opened: nobody will close it
                store.close()
            raise
        return opened[0]

    def __repr__(self) -> str:
        return f"Store({self._engine.url.render_as_string(hide_password=True)!r})"

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for your own queries on the ``clust_`` tables)."""
        return self._engine

    def close(self) -> None:
        """Release the connection pool (not that of an engine passed in)."""
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    async def aclose(self) -> None:
        """:meth:`close` in a worker thread; it runs even in a cancelled task."""
        with anyio.CancelScope(shield=True):
            await self.offload.run(self.close)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    # -- conversations ----------------------------------------------------------------

    def _conversation(self, row: Mapping[str, Any]) -> Conversation:
        return Conversation(
            self._engine,
            row,
            lease=self._lease,
            spending=self._spending,
            cache=self._cache,
            prices=self._prices,
            truncation=self._truncation,
            offload=self.offload,
        )

    def create_conversation(
        self,
        *,
        model: str,
        max_tokens: int,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        title: str | None = None,
    ) -> Conversation:
        """Start a conversation; every turn is sent with these defaults.

        ``system`` is a string, a :class:`~clust.messages.SystemPrompt` or text blocks
        (cache markers kept); ``tools`` are tool definitions; ``params`` any other body
        field (``temperature``, ``thinking``, ``tool_choice``, ...). All are checked as
        a request body would be (``InvalidParameter`` names the field) before anything
        is written. ``metadata`` is yours (JSON), filterable in :meth:`list_conversations`.
        """
        head = RequestHead.validated(
            model=model, max_tokens=max_tokens, system=system, tools=tools, params=params
        )
        return self._insert(head, metadata=metadata, title=title)

    acreate_conversation = awaitable(create_conversation)

    def _insert(
        self,
        head: RequestHead,
        *,
        metadata: Mapping[str, Any] | None,
        title: str | None,
        parent_id: str | None = None,
        fork_position: int | None = None,
        turns: Sequence[tuple[str, bytes]] = (),
        conversation_id: str | None = None,
        usage: Sequence[Mapping[str, Any]] = (),
    ) -> Conversation:
        """Add a conversation, its ``turns`` and ``usage`` rows (keyed by column name,
        without ``conversation_id``) in one transaction."""
        metadata = storable.checked_metadata(metadata)
        storable.check_text("title", title, optional=True)
        if conversation_id is not None:
            storable.checked_new_id(conversation_id)
        wire = dict(head.wire)
        now = utcnow()
        values = {
            "id": conversation_id or str(uuid.uuid4()),
            "title": title,
            "model": wire.pop("model"),
            "system": wire.pop("system", None),
            "tools": wire.pop("tools", None),
            "params": wire,
            "request_head": head.json.decode(),
            "metadata": metadata,
            "parent_id": parent_id,
            "fork_position": fork_position,
            "next_position": len(turns),
            "created_at": now,
            "updated_at": now,
        }
        with transaction(self._engine) as connection:
            rows.insert_conversation(connection, values)
            if turns:
                rows.insert_messages(connection, values["id"], 0, turns, now)
            for entry in usage:
                rows.insert_usage(connection, {**entry, "conversation_id": values["id"]})
        conversation = self._conversation(values)
        conversation.state.history.extend([role for role, _ in turns], [wire for _, wire in turns])
        return conversation

    def get_conversation(self, conversation_id: str) -> Conversation:
        """Open a stored conversation (its turns are read when first needed).

        Raises:
            ConversationNotFound: no conversation has this id
                (:class:`~clust.messages.InvalidConversationId` when none can: not a
                string, or holding a NUL or a lone surrogate).
        """
        storable.checked_conversation_id(conversation_id)
        with reading(self._engine) as connection:
            row = rows.open_conversation(connection, conversation_id)
        if row is None:
            raise ConversationNotFound(conversation_id)
        return self._conversation(row)

    aget_conversation = awaitable(get_conversation)

    def list_conversations(
        self,
        *,
        limit: int = 50,
        after: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[Conversation]:
        """Conversations, newest first.

        Args:
            limit: page size (1..1000).
            after: the id of the last conversation of the previous page (an id that
                no longer exists raises :class:`ConversationNotFound`).
            metadata: only conversations whose metadata has these keys with these
                (scalar: string, number, bool or null) values.
        """
        if not 1 <= limit <= 1000:
            raise InvalidParameter("limit", limit, "1..1000")
        if after is not None:
            storable.checked_conversation_id(after, "after")
        for key, value in storable.checked_metadata(metadata).items():
            if not isinstance(value, _SCALARS):
                raise InvalidParameter(
                    f"metadata[{key!r}]", value, "a string, number, bool or None"
                )
        with self._engine.connect() as connection, connection.begin():
            found = rows.list_conversations(connection, limit=limit, after=after, metadata=metadata)
            stale = not found and after is not None
            if stale and rows.get_conversation(connection, str(after)) is None:
                raise ConversationNotFound(str(after))  # a stale cursor, not an empty page
        return [self._conversation(dict(row._mapping)) for row in found]

    alist_conversations = awaitable(list_conversations)

    def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation and its turns (usage rows stay, detached).

        Raises:
            ConversationNotFound: no conversation has this id.
        """
        storable.checked_conversation_id(conversation_id)
        with transaction(self._engine) as connection:
            if not rows.delete_conversation(connection, conversation_id):
                raise ConversationNotFound(conversation_id)

    adelete_conversation = awaitable(delete_conversation)

    def break_lease(self, conversation_id: str) -> bool:
        """Free a conversation whose lease a send holds, at once; whether a live lease
        was held. An operator's repair, for a holder known to be gone (its lease would
        run out within ``lease_seconds`` anyway) or stuck: if it is alive after all, its
        reply is refused with :class:`~clust.messages.LeaseLost` (its usage recorded),
        and its pending user turn may be resent by ``retry``.

        Raises:
            ConversationNotFound: no conversation has this id.
        """
        storable.checked_conversation_id(conversation_id)
        with transaction(self._engine) as connection:
            return rows.break_lease(connection, conversation_id, utcnow()) is not None

    abreak_lease = awaitable(break_lease)

    def fork(self, conversation: Conversation | str, at_position: int) -> Conversation:
        """A new conversation holding the turns before ``at_position`` (same defaults).

        For edit-and-retry: fork at the position of the turn to change, then send the
        new version. The fork records its parent and the fork position.
        """
        parent = (
            conversation
            if isinstance(conversation, Conversation)
            else self.get_conversation(conversation)
        )
        parent.refresh()
        parent_length = len(parent.state.history)
        if not 0 <= at_position <= parent_length:
            raise InvalidParameter("at_position", at_position, f"0..{parent_length}")
        history = parent.state.history
        try:
            return self._insert(
                parent.state.head,
                metadata=parent.metadata,
                title=parent.title,
                parent_id=parent.id,
                fork_position=at_position,
                turns=list(
                    zip(history.roles[:at_position], history.wires[:at_position], strict=True)
                ),
            )
        except IntegrityError as exc:  # the parent was deleted since it was opened
            raise ConversationNotFound(parent.id) from exc

    afork = awaitable(fork)

    # -- export and import ---------------------------------------------------------------

    def export_conversation(self, conversation: Conversation | str) -> dict[str, Any]:
        """One conversation as a JSON-ready document (turns, defaults, usage)."""
        from clust.conversation.exchange import export_document

        conv = (
            conversation
            if isinstance(conversation, Conversation)
            else self.get_conversation(conversation)
        )
        return export_document(self._engine, conv)

    aexport_conversation = awaitable(export_conversation)

    def import_conversation(
        self, document: Mapping[str, Any], *, keep_id: bool = False
    ) -> Conversation:
        """Create a conversation from :meth:`export_conversation`'s document.

        A new id is given unless ``keep_id`` (then an existing id raises ``StoreError``).
        Usage rows are imported too, so spending stays on record. Checked first
        (``InvalidParameter`` names the field, nothing stored): see ``import_document``.
        """
        from clust.conversation.exchange import already_there, import_document

        found = import_document(document, keep_id=keep_id)
        try:
            return self._insert(
                found.head,
                metadata=found.metadata,
                title=found.title,
                fork_position=found.fork_position,
                turns=found.turns,
                conversation_id=found.conversation_id,
                usage=found.usage,
            )
        except IntegrityError as error:
            raise already_there(document, error) from error

    aimport_conversation = awaitable(import_conversation)

    # -- message batches -----------------------------------------------------------------

    def _batch_send(
        self,
        client: Any,
        requests: Iterable[tuple[Conversation | str, MessageContent | Message | None]],
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[StoredBatch]:
        """Send the next turn of many conversations as one Message Batch (half price).

        Each ``(conversation, content)`` pair adds ``content`` as a user turn, as
        :meth:`Conversation.send` would (``content=None`` resends a pending turn, as
        ``retry`` would), and the requests go out in one batch. The batch and its
        turns are recorded before it is sent, so any process can collect it later with
        :meth:`collect_batch` (:meth:`open_batches` lists what is left to collect).
        Until then each turn is pending and its conversation refuses other turns
        (:class:`~clust.messages.TurnInBatch`). The overrides apply to every request.

        Raises (nothing is stored, nothing sent):
            InvalidParameter: no pairs or more than 100,000, a conversation twice or of
                another store, bad content or override.
            ConversationNotFound / ConversationBusy / PendingTurn / TurnInBatch /
                NothingToRetry / UnansweredToolCalls / BudgetExceeded /
                ContextWindowExceeded: a conversation cannot take the turn.
            ApiError / ClientError: the create request failed; every turn was taken
                back (the batch is kept as ``failed``, with the error).
        """
        from clust.conversation.batch_submit import Overrides, submit

        options = CallOptions(None if betas is None else list(betas), None, timeout, max_retries)
        overrides = Overrides(model, max_tokens, system, tools, params)
        return submit(
            self._engine, self._lease, requests, self.get_conversation, overrides, options
        )

    batch_send = blocking_call(_batch_send)
    abatch_send = async_call(_batch_send)

    def _collect_batch(
        self,
        client: Any,
        batch: StoredBatch | str,
        *,
        wait: bool = False,
        poll_interval: float | None = None,
        max_interval: float | None = None,
        timeout: float | None = None,
        on_progress: Callable[[MessageBatch], object] | None = None,
    ) -> Plan[BatchCollection]:
        """Store the replies of a batch sent by :meth:`batch_send`, once it has ended.

        ``batch`` is a :class:`~clust.conversation.batching.StoredBatch`, its id or the
        API's batch id. Results are streamed (constant memory); each reply is stored
        with its usage row (``service_tier`` ``"batch"``: priced at the batch
        discount) in its conversation. Errored, expired and canceled requests leave
        their user turn pending for ``retry``. Collecting again stores nothing twice.

        With ``wait`` the batch is polled until it ends (``poll_interval``,
        ``max_interval``, ``timeout`` and ``on_progress`` as for
        ``client.wait_for_message_batch``; with an ``AsyncClient``, ``on_progress`` may
        be a coroutine function); without, a batch still processing is left alone (the
        result says ``ended=False``).

        Raises:
            StoreError: no such batch in this store, or one that was never created.
            BatchWaitTimeout: ``wait`` gave up after ``timeout`` seconds.
        """
        from clust.conversation.batch_collect import WaitOptions, collect

        waiting = WaitOptions(wait, poll_interval, max_interval, timeout, on_progress)
        return collect(self._engine, batch_key(batch), waiting)

    collect_batch = blocking_call(_collect_batch)
    acollect_batch = async_call(_collect_batch)

    def get_batch(self, batch: str) -> StoredBatch:
        """A batch sent from this store, by its id or the API's batch id, as last seen.

        Raises:
            StoreError: no such batch in this store.
        """
        return load(self._engine, batch)

    aget_batch = awaitable(get_batch)

    def _batch_status(self, client: Any, batch: StoredBatch | str) -> Plan[StoredBatch]:
        """:meth:`get_batch` with its status and request counts read from the API."""
        return refresh(self._engine, batch_key(batch))

    batch_status = blocking_call(_batch_status)
    abatch_status = async_call(_batch_status)

    def batches(self, *, limit: int = 50, state: str | None = None) -> list[StoredBatch]:
        """Batches sent from this store, newest first (``limit`` 1..1000); only those
        stored in ``state`` (``submitting``, which includes the ``abandoned`` ones,
        ``submitted``, ``collected`` or ``failed``) if given."""
        if state is not None and state not in ("submitting", "submitted", "collected", "failed"):
            raise InvalidParameter(
                "state", state, "'submitting', 'submitted', 'collected' or 'failed'"
            )
        return listing(self._engine, limit=limit, states=None if state is None else [state])

    abatches = awaitable(batches)

    def open_batches(self) -> list[StoredBatch]:
        """The batches whose results are still to be stored (``submitted``), oldest
        first: what a restarted process passes to :meth:`collect_batch`."""
        found = listing(self._engine, limit=1000, states=["submitted"])
        return found[::-1]

    aopen_batches = awaitable(open_batches)
