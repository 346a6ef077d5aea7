"""FakeClaude: the public face (lifecycle, scripting, recorder, time)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType

import anyio.to_thread

from .app import BatchOutcome, BatchResolver, FakeApp
from .models import ModelInfo, ModelTable
from .recorder import RecordedRequest
from .replies import Reply, Responder
from .server import HttpServer

__all__ = ["FakeClaude"]


class FakeClaude:
    """A real HTTP server on 127.0.0.1 that speaks the Claude Messages API wire protocol.

    Use it as ``with FakeClaude() as fake:`` (sync) or ``async with FakeClaude() as fake:``
    (asyncio or trio), or call :meth:`start` / :meth:`close`. Point a client at
    ``fake.base_url`` with any API key::

        with FakeClaude() as fake:
            fake.enqueue(Reply.text("Hi"))
            client = anthropic.Anthropic(base_url=fake.base_url, api_key="test")
            client.messages.create(model="claude-sonnet-5-5", max_tokens=100, messages=[...])
            assert fake.last_request.body["max_tokens"] == 100

    Args:
        port: TCP port (0 = any free port).
        chunk_size: write every SSE body in TCP chunks of this many bytes (splits anywhere).
        require_ttl_beta: answer 400 to a 1h cache TTL without the
            ``extended-cache-ttl-2025-04-11`` beta header (the current API does not require it).
        batch_processing_seconds: how long (on the fake clock) a batch stays ``in_progress``.
        models: the model list of GET /v1/models (``ModelInfo`` or plain ids); default: the
            shipped table of known models.
        min_cache_tokens: override the per-model minimum cacheable prefix (one number for all
            models, or a mapping by model id).
        api_key: when set, only this key is accepted (any other -> 401).
        host: interface to bind (default 127.0.0.1).
    """

    def __init__(
        self,
        *,
        port: int = 0,
        chunk_size: int | None = None,
        require_ttl_beta: bool = False,
        batch_processing_seconds: float = 0.0,
        models: Iterable[ModelInfo | str] | None = None,
        min_cache_tokens: int | Mapping[str, int] | None = None,
        api_key: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        if batch_processing_seconds < 0:
            raise ValueError("batch_processing_seconds must be >= 0")
        self._port = port
        self._host = host
        self._chunk_size = chunk_size
        self._app = FakeApp(
            models=ModelTable(models, min_cache_tokens),
            require_ttl_beta=require_ttl_beta,
            batch_processing_seconds=batch_processing_seconds,
            api_key=api_key,
        )
        self._server: HttpServer | None = None
        self._closed = False

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "not started"
        state = "closed" if self._closed else where
        return f"<FakeClaude {state}>"

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeClaude:
        """Bind the port and start serving in a background thread. Returns ``self``."""
        if self._closed:
            raise RuntimeError("a closed FakeClaude cannot be restarted; make a new one")
        if self._server is None:
            server = HttpServer(
                self._app, host=self._host, port=self._port, chunk_size=self._chunk_size
            )
            self._app.batches.base_url = f"http://{self._host}:{server.port}"
            self._server = server
            server.start()
        return self

    def close(self) -> None:
        """Stop the server: open connections are cut and every thread is joined."""
        self._closed = True
        if self._server is not None:
            self._server.close()

    def __enter__(self) -> FakeClaude:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> FakeClaude:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.close)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash); only once started."""
        if self._server is None:
            raise RuntimeError("FakeClaude is not started; use `with FakeClaude() as fake:`")
        return self._app.batches.base_url

    @property
    def port(self) -> int:
        """The bound port; only once started."""
        if self._server is None:
            raise RuntimeError("FakeClaude is not started")
        return self._server.port

    # --- scripting ----------------------------------------------------------------------

    def enqueue(self, *replies: Reply | Responder) -> None:
        """Append replies (or functions ``RecordedRequest -> Reply``) to the FIFO queue that
        POST /v1/messages consumes, one per valid request."""
        for reply in replies:
            if not isinstance(reply, Reply) and not callable(reply):
                raise TypeError(f"expected a Reply or a callable, got {reply!r}")
        with self._app.lock:
            self._app.queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many queued replies are still unused."""
        with self._app.lock:
            return len(self._app.queue)

    def set_responder(self, responder: Responder | None) -> None:
        """Answer with ``responder(request)`` whenever the queue is empty (``None``: echo)."""
        with self._app.lock:
            self._app.responder = responder

    def script_batch_result(self, custom_id: str, outcome: BatchOutcome) -> None:
        """Fix the result of every batch request with this ``custom_id``: ``"errored"``,
        ``"expired"``, ``"canceled"``, ``"succeeded"`` (echo), or a Reply (a message reply is
        rendered; ``Reply.error`` gives an ``errored`` result with that error)."""
        if isinstance(outcome, str) and outcome not in (
            "succeeded",
            "errored",
            "canceled",
            "expired",
        ):
            raise ValueError(f"unknown batch outcome {outcome!r}")
        with self._app.lock:
            self._app.batch_outcomes[custom_id] = outcome

    def set_batch_resolver(self, resolver: BatchResolver | None) -> None:
        """Decide batch results with ``resolver(custom_id, params)`` (an outcome as in
        :meth:`script_batch_result`, or ``None`` for the default echo)."""
        with self._app.lock:
            self._app.batch_resolver = resolver

    # --- recorder -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        return self._app.recorder.all()

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (``LookupError`` if none)."""
        return self._app.recorder.last()

    def clear(self) -> None:
        """Forget the recorded requests."""
        self._app.recorder.clear()

    def reset(self) -> None:
        """Forget recorded requests, queued replies, the responder, batch scripts, batches and
        the prompt cache (ids keep counting)."""
        with self._app.lock:
            self._app.recorder.clear()
            self._app.queue.clear()
            self._app.responder = None
            self._app.batch_outcomes.clear()
            self._app.batch_resolver = None
            self._app.batches.clear()
            self._app.cache.clear()

    # --- time and cache -----------------------------------------------------------------

    def advance_time(self, seconds: float) -> None:
        """Move the fake clock forward (cache TTLs expire, batches finish)."""
        self._app.clock.advance(seconds)

    @property
    def now(self) -> float:
        """The fake clock (monotonic seconds plus every ``advance_time``)."""
        return self._app.clock.now()

    def clear_cache(self) -> None:
        """Forget every cached prompt prefix."""
        self._app.cache.clear()

    @property
    def cached_prefixes(self) -> int:
        """How many prompt prefixes are cached and unexpired."""
        return self._app.cache.live_entries()

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        """The model table served by GET /v1/models."""
        return self._app.models.models
