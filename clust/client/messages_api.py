"""The Messages methods of ``Client`` and ``AsyncClient``: create, stream, count tokens.

Each is written once (see :mod:`clust.client._twins`): ``Client`` returns the result,
``AsyncClient`` a coroutine of it, and the stream methods return a ``MessageStream``
or an ``AsyncMessageStream``. The ``*_from_spec`` methods are the lower-level API: they
send a prepared :class:`clust.protocol.request.RequestSpec` (the conversation layer
sends its spliced bodies through them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from clust.client._base import ClientCore, Opening
from clust.client._settings import TimeoutTypes
from clust.client._twins import operation, shelled
from clust.protocol.plans import Plan
from clust.protocol.request import RequestSpec, count_tokens_request, message_request
from clust.protocol.response import parse_json_model, parse_message

if TYPE_CHECKING:
    from clust.client.streaming import AsyncMessageStream, MessageStream
    from clust.messages.request import MessagesRequestBody
    from clust.messages.response import MessagesResponseBody
    from clust.messages.tokens import TokenCount

__all__ = ["MessagesApi"]


# The stream classes are imported on first use: they pull in every event type.
def _blocking_stream(opening: Opening) -> MessageStream:
    from clust.client.streaming import MessageStream

    return MessageStream(opening)


def _awaiting_stream(opening: Opening) -> AsyncMessageStream:
    from clust.client.streaming import AsyncMessageStream

    return AsyncMessageStream(opening)


class MessagesApi(ClientCore):
    """``create_a_message``, ``create_a_message_stream``, ``count_tokens`` and their
    ``*_from_spec`` forms, for both clients."""

    @operation
    def create_a_message(
        self,
        body: MessagesRequestBody,
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[MessagesResponseBody]:
        """Send ``body`` to POST /v1/messages and return the reply.

        Raises:
            StreamOptionMismatch: the body asks for a stream.
            ApiError: (a subclass per error type) the API answered with an error.
            ClientError: connection failure, timeout, or an undecodable reply.
        """
        spec = message_request(body, stream=False, betas=betas, extra_headers=extra_headers)
        return self._create(spec, timeout, max_retries)

    @operation
    def count_tokens(
        self,
        body: MessagesRequestBody,
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[TokenCount]:
        """Count the input tokens of the prompt in ``body`` (POST /v1/messages/count_tokens)."""
        spec = count_tokens_request(body, betas=betas, extra_headers=extra_headers)
        return self._count(spec, timeout, max_retries)

    @shelled(_blocking_stream, _awaiting_stream)
    def create_a_message_stream(
        self,
        body: MessagesRequestBody,
        *,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Opening:
        """Stream the reply to ``body`` as typed events.

        A body with ``stream`` unset is sent with ``"stream": true``; one with
        ``stream=False`` raises :class:`StreamOptionMismatch` at once. The request is
        sent when the stream is first iterated (``for``, or ``async for`` on the async
        client). Opening is retried like any call; a stream that fails before its first
        content is reopened transparently under the same retry budget (the attempts
        billed by then are in ``stream.discarded_attempts``); after that, failures
        raise with the partial message.
        """
        spec = message_request(body, stream=True, betas=betas, extra_headers=extra_headers)
        return self._opening(spec, timeout, max_retries)

    @operation
    def create_from_spec(
        self,
        spec: RequestSpec,
        *,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[MessagesResponseBody]:
        """Send a prepared message request (lower-level API): ``spec`` is a
        :class:`~clust.protocol.request.RequestSpec` for POST /v1/messages, built by
        :func:`~clust.protocol.request.message_request` (or spliced from stored wire
        JSON) with ``stream`` false. Returns the reply; raises as :meth:`create_a_message`.
        """
        return self._create(spec, timeout, max_retries)

    @shelled(_blocking_stream, _awaiting_stream)
    def stream_from_spec(
        self,
        spec: RequestSpec,
        *,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Opening:
        """Stream a prepared message request (lower-level API): ``spec`` is a
        :class:`~clust.protocol.request.RequestSpec` for POST /v1/messages with
        ``stream`` true. The stream behaves as :meth:`create_a_message_stream`'s."""
        return self._opening(spec, timeout, max_retries)

    @operation
    def count_tokens_from_spec(
        self,
        spec: RequestSpec,
        *,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> Plan[TokenCount]:
        """Count the input tokens of a prepared request (lower-level API): ``spec`` is a
        :class:`~clust.protocol.request.RequestSpec` for POST /v1/messages/count_tokens,
        as :func:`~clust.protocol.request.count_tokens_request` builds it."""
        return self._count(spec, timeout, max_retries)

    def _create(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> Plan[MessagesResponseBody]:
        response = yield from self._call(spec, timeout, max_retries)
        return parse_message(response.headers, response.content)

    def _count(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> Plan[TokenCount]:
        from clust.messages.tokens import TokenCount

        response = yield from self._call(spec, timeout, max_retries)
        return parse_json_model(TokenCount, response.headers, response.content)

    def _opening(
        self, spec: RequestSpec, timeout: TimeoutTypes | None, max_retries: int | None
    ) -> Opening:
        request = self._build(spec, timeout)
        policy = self._policy(max_retries)
        return Opening(self._io, lambda done: self._send(request, True, policy, done), policy)
