"""Routing: one recorded request in, one :class:`Outgoing` out, for every endpoint."""

from __future__ import annotations

import json
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from .batches import BatchStore
from .caching import DiagnosticsMemory, PromptCache
from .clock import FakeClock
from .engine import Engine
from .errors import FakeApiError, error_envelope, invalid_request, not_found
from .ids import IdFactory
from .models import ModelTable
from .outgoing import Outgoing
from .pagination import paginate
from .prompt import Segment, count_input_tokens
from .recorder import RecordedRequest, Recorder, header_values
from .replies import Reply, Responder
from .sse import encode_event, message_events
from .validation import check_headers, validate_batch, validate_messages

__all__ = ["BatchOutcome", "BatchResolver", "FakeApp"]

BatchOutcome = str | Reply
"""``"succeeded"`` | ``"errored"`` | ``"canceled"`` | ``"expired"``, or a Reply to render."""
BatchResolver = Callable[[str, Mapping[str, Any]], BatchOutcome | None]
"""``(custom_id, params) -> outcome`` or ``None`` for the default (echo) answer."""

_MALFORMED_JSON = b'{"id": "msg_fake_broken", "type": "message", "content": [{"type": "te'
_MALFORMED_SSE = b'event: message_start\ndata: {"type": "message_start", "message": {not json\n\n'
_BATCH_OUTCOMES = ("succeeded", "errored", "canceled", "expired")


class FakeApp:
    """All state of one fake server: queue, cache, batches, recorder, models."""

    def __init__(
        self,
        *,
        models: ModelTable,
        require_ttl_beta: bool,
        batch_processing_seconds: float,
        api_key: str | None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = FakeClock()
        self.ids = IdFactory()
        self.recorder = Recorder()
        self.models = models
        self.cache = PromptCache(self.clock, models.min_cacheable_tokens)
        self.diagnostics = DiagnosticsMemory()
        self.engine = Engine(self.ids, self.cache, self.diagnostics)
        self.batches = BatchStore(
            self.clock, self.ids, batch_processing_seconds, self._batch_result
        )
        self.require_ttl_beta = require_ttl_beta
        self.api_key = api_key
        self.queue: deque[Reply | Responder] = deque()
        self.responder: Responder | None = None
        self.batch_outcomes: dict[str, BatchOutcome] = {}
        self.batch_resolver: BatchResolver | None = None

    # --- entry point --------------------------------------------------------------------

    def __call__(self, request: RecordedRequest) -> Outgoing:
        """Answer one request (never raises)."""
        request_id = self.ids.request_id()
        self.recorder.record(request)
        try:
            with self.lock:
                return self._route(request, request_id)
        except FakeApiError as error:
            return self._error(error, request_id)
        except Exception as error:  # a bug in a responder or in the fake: say so loudly
            traceback.print_exc(file=sys.stderr)
            return self._error(
                FakeApiError(500, "api_error", f"FakeClaude internal error: {error!r}"),
                request_id,
            )

    def _route(self, request: RecordedRequest, request_id: str) -> Outgoing:
        check_headers(request.headers, api_key=self.api_key)
        method = request.method
        parts = request.path.strip("/").split("/")
        if parts[:1] != ["v1"]:
            raise not_found(f"Not found: {method} {request.path}")
        rest = parts[1:]
        if rest == ["messages"] and method == "POST":
            return self._messages(request, request_id)
        if rest == ["messages", "count_tokens"] and method == "POST":
            return self._count_tokens(request, request_id)
        if rest[:2] == ["messages", "batches"]:
            return self._batches(request, request_id, rest[2:])
        if rest == ["models"] and method == "GET":
            lifecycles = request.query.get("lifecycle[]") or request.query.get("lifecycle")
            listing = self.models.listing(lifecycles)
            page = paginate(listing, lambda m: m.id, lambda m: m.to_json(), request.query)
            return self._json(page, request_id)
        if len(rest) == 2 and rest[0] == "models" and method == "GET":
            info = self.models.get(rest[1])
            if info is None:
                raise not_found(f"model: {rest[1]}")
            return self._json(info.to_json(), request_id)
        raise not_found(f"Not found: {method} {request.path}")

    # --- messages -----------------------------------------------------------------------

    def _messages(self, request: RecordedRequest, request_id: str) -> Outgoing:
        body = self._json_body(request)
        segments = validate_messages(
            body,
            models=self.models,
            betas=header_values(request.headers, "anthropic-beta"),
            require_ttl_beta=self.require_ttl_beta,
        )
        reply = self._next_reply(request)
        stream = body.get("stream") is True
        return self._answer(reply, body, request_id, stream, segments)

    def _count_tokens(self, request: RecordedRequest, request_id: str) -> Outgoing:
        body = self._json_body(request)
        segments = validate_messages(
            body,
            models=self.models,
            betas=header_values(request.headers, "anthropic-beta"),
            require_ttl_beta=self.require_ttl_beta,
            count_tokens=True,
        )
        return self._json({"input_tokens": count_input_tokens(segments)}, request_id)

    def _next_reply(self, request: RecordedRequest) -> Reply:
        item: Reply | Responder
        if self.queue:
            item = self.queue.popleft()
        elif self.responder is not None:
            item = self.responder
        else:
            return Reply.echo()
        reply = item if isinstance(item, Reply) else item(request)
        if not isinstance(reply, Reply):
            raise TypeError(f"a responder must return a Reply, got {reply!r}")
        return reply

    def _answer(
        self,
        reply: Reply,
        body: Mapping[str, Any],
        request_id: str,
        stream: bool,
        segments: list[Segment],
    ) -> Outgoing:
        extra = {name.lower(): value for name, value in (reply.headers or {}).items()}
        headers = {"request-id": request_id, **extra}
        if reply.kind == "disconnect":
            return Outgoing(drop=True, response_delay=reply.response_delay)
        if reply.kind == "error":
            envelope = error_envelope(
                reply.error_type or "api_error",
                reply.error_message or "",
                request_id,
                reply.error_details,
            )
            headers["content-type"] = "application/json"
            return Outgoing(
                status=reply.status,
                headers=headers,
                body=_dumps(envelope),
                response_delay=reply.response_delay,
            )
        if reply.kind in ("raw", "malformed"):
            default_body, default_type = (
                (_MALFORMED_SSE, "text/event-stream; charset=utf-8")
                if stream
                else (_MALFORMED_JSON, "application/json")
            )
            body_bytes = reply.body if reply.body is not None else default_body
            headers["content-type"] = reply.content_type or default_type
            return Outgoing(
                status=reply.status,
                headers=headers,
                body=b"" if stream else body_bytes,
                chunks=[body_bytes] if stream else None,
                response_delay=reply.response_delay,
            )
        message = self.engine.render(reply, body, segments=segments)
        if not stream:
            encoded = _dumps(message)
            headers["content-type"] = "application/json"
            return Outgoing(
                headers=headers,
                body=encoded,
                truncate_at=len(encoded) // 2 if reply.cut_after_events is not None else None,
                event_delay=reply.event_delay,
                response_delay=reply.response_delay,
            )
        events = message_events(message, ping_every=reply.ping_every)
        if reply.omit_stop:
            events = [e for e in events if e[0] not in ("message_delta", "message_stop")]
        if reply.stream_error is not None:
            after, error_type, error_message = reply.stream_error
            events = [
                *events[:after],
                ("error", error_envelope(error_type, error_message, request_id)),
            ]
        abort = reply.cut_after_events is not None
        if reply.cut_after_events is not None:
            events = events[: reply.cut_after_events]
        headers["content-type"] = "text/event-stream; charset=utf-8"
        headers["cache-control"] = "no-cache"
        return Outgoing(
            headers=headers,
            chunks=[encode_event(name, data) for name, data in events],
            abort=abort,
            event_delay=reply.event_delay,
            response_delay=reply.response_delay,
            chunk_size=reply.chunk_size,
        )

    # --- batches ------------------------------------------------------------------------

    def _batches(self, request: RecordedRequest, request_id: str, rest: list[str]) -> Outgoing:
        method = request.method
        store = self.batches
        if not rest and method == "POST":
            pairs = validate_batch(self._json_body(request))
            betas = header_values(request.headers, "anthropic-beta")
            return self._json(store.create(pairs, betas), request_id)
        if not rest and method == "GET":
            return self._json(store.list(request.query), request_id)
        if len(rest) == 1 and method == "GET":
            return self._json(store.retrieve(rest[0]), request_id)
        if len(rest) == 1 and method == "DELETE":
            return self._json(store.delete(rest[0]), request_id)
        if len(rest) == 2 and rest[1] == "cancel" and method == "POST":
            return self._json(store.cancel(rest[0]), request_id)
        if len(rest) == 2 and rest[1] == "results" and method == "GET":
            return Outgoing(
                headers={"request-id": request_id, "content-type": "application/binary"},
                body=store.results(rest[0]),
            )
        raise not_found(f"Not found: {method} {request.path}")

    def _batch_result(
        self, custom_id: str, params: Mapping[str, Any], betas: list[str]
    ) -> dict[str, Any]:
        outcome: BatchOutcome | None = self.batch_outcomes.get(custom_id)
        if outcome is None and self.batch_resolver is not None:
            outcome = self.batch_resolver(custom_id, params)
        if isinstance(outcome, str):
            if outcome not in _BATCH_OUTCOMES:
                raise ValueError(f"unknown batch outcome {outcome!r}")
            if outcome in ("canceled", "expired"):
                return {"type": outcome}
            if outcome == "errored":
                envelope = error_envelope("api_error", "Internal server error", None)
                return {"type": "errored", "error": envelope}
            outcome = None
        try:
            segments = validate_messages(
                params, models=self.models, betas=betas, require_ttl_beta=self.require_ttl_beta
            )
        except FakeApiError as error:
            return {"type": "errored", "error": error.envelope(None)}
        reply = outcome if outcome is not None else Reply.echo()
        if reply.kind == "error":
            envelope = error_envelope(
                reply.error_type or "api_error",
                reply.error_message or "",
                None,
                reply.error_details,
            )
            return {"type": "errored", "error": envelope}
        if reply.kind not in ("message", "echo"):
            envelope = error_envelope("api_error", "Internal server error", None)
            return {"type": "errored", "error": envelope}
        message = self.engine.render(reply, params, service_tier="batch", segments=segments)
        return {"type": "succeeded", "message": message}

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    def _json_body(request: RecordedRequest) -> dict[str, Any]:
        if not isinstance(request.body, dict):
            if request.raw and request.body is None:
                raise invalid_request("There was an error parsing the body: invalid JSON")
            raise invalid_request("body: Input should be a JSON object")
        return request.body

    @staticmethod
    def _json(data: Any, request_id: str) -> Outgoing:
        return Outgoing(
            headers={"request-id": request_id, "content-type": "application/json"},
            body=_dumps(data),
        )

    @staticmethod
    def _error(error: FakeApiError, request_id: str) -> Outgoing:
        headers = {"request-id": request_id, "content-type": "application/json", **error.headers}
        return Outgoing(
            status=error.status, headers=headers, body=_dumps(error.envelope(request_id))
        )


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
