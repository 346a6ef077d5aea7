"""The effects of Message Batches: what the plans of ``Store.batch_send`` and
``Store.collect_batch`` ask the client for.

Like those of :mod:`clust.conversation.effects`, each runs itself blocking (``run``)
or awaited (``arun``) in a line or two; every decision stays in the plans
(:mod:`clust.conversation.batch_submit`, :mod:`clust.conversation.batch_collect`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clust.client.batch_results import AsyncBatchResults, BatchResults
    from clust.conversation.effects import AsyncContext, BlockingContext, CallOptions
    from clust.messages.batches import BatchResult, MessageBatch

__all__ = ["CloseResults", "CreateBatch", "GetBatch", "NextResults", "OpenResults"]


@dataclass(frozen=True)
class CreateBatch:
    """Create a Message Batch of ``(custom_id, params JSON)`` pairs (validated wire
    JSON, spliced as bytes); the answer is the :class:`MessageBatch`."""

    items: Sequence[tuple[str, bytes]]
    betas: Sequence[str] | None
    options: CallOptions

    def run(self, context: BlockingContext) -> MessageBatch:
        create, options = context.client.create_message_batch_from_wire, self.options
        return create(
            self.items, betas=self.betas, timeout=options.timeout, max_retries=options.max_retries
        )

    async def arun(self, context: AsyncContext) -> MessageBatch:
        create, options = context.client.create_message_batch_from_wire, self.options
        return await create(
            self.items, betas=self.betas, timeout=options.timeout, max_retries=options.max_retries
        )


@dataclass(frozen=True)
class GetBatch:
    """Look a Message Batch up; with ``wait`` (keyword arguments of the client's
    ``wait_for_message_batch``) poll it until it has ended. The answer is the batch."""

    api_id: str
    wait: Mapping[str, Any] | None = None

    def run(self, context: BlockingContext) -> MessageBatch:
        if self.wait is None:
            return context.client.get_message_batch(self.api_id)
        return context.client.wait_for_message_batch(self.api_id, **self.wait)

    async def arun(self, context: AsyncContext) -> MessageBatch:
        if self.wait is None:
            return await context.client.get_message_batch(self.api_id)
        return await context.client.wait_for_message_batch(self.api_id, **self.wait)


@dataclass(frozen=True)
class OpenResults:
    """Open an ended batch's results stream; the answer is the open stream (its
    ``with`` block spans effects: :class:`CloseResults` leaves it)."""

    batch: MessageBatch

    def run(self, context: BlockingContext) -> BatchResults:
        return context.client.message_batch_results(self.batch).__enter__()

    async def arun(self, context: AsyncContext) -> AsyncBatchResults:
        return await context.client.message_batch_results(self.batch).__aenter__()


@dataclass(frozen=True)
class NextResults:
    """Read the next results (up to ``size``) of a stream :class:`OpenResults` opened;
    the answer is their list, empty once the results are over."""

    results: Any
    size: int

    def run(self, context: BlockingContext) -> list[BatchResult]:
        return list(islice(self.results, self.size))

    async def arun(self, context: AsyncContext) -> list[BatchResult]:
        run: list[BatchResult] = []
        while len(run) < self.size and (line := await anext(self.results, None)) is not None:
            run.append(line)
        return run


@dataclass(frozen=True)
class CloseResults:
    """Close a stream :class:`OpenResults` opened (leave its ``with`` block)."""

    results: Any

    def run(self, context: BlockingContext) -> None:
        self.results.__exit__(None, None, None)

    async def arun(self, context: AsyncContext) -> None:
        await self.results.__aexit__(None, None, None)
