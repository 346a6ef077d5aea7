"""Message Batches: create, retrieve, list, cancel, delete and JSONL results.

A batch is ``in_progress`` until ``batch_processing_seconds`` have passed on the fake clock
(``advance_time`` counts), then every request is answered at once (by the ``process`` callback:
the reply engine, or a scripted outcome) and the batch is ``ended``. Cancel moves it to
``canceling``; the next look at it finds it ``ended`` with every request ``canceled``. A batch
whose processing would outlast its 24 h expiry ends with every request ``expired``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .clock import FakeClock, rfc3339
from .errors import invalid_request, not_found
from .ids import IdFactory
from .pagination import paginate

__all__ = ["BatchStore"]

EXPIRY_SECONDS = 24 * 3600.0

Process = Callable[[str, Mapping[str, Any], list[str]], dict[str, Any]]
"""``(custom_id, params, betas) -> result`` object of one results line."""


@dataclass
class _Batch:
    id: str
    requests: list[tuple[str, Mapping[str, Any]]]
    betas: list[str]
    created_at: datetime
    ends_at: float
    status: str = "in_progress"
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)


class BatchStore:
    """All batches of one fake server (callers serialise access)."""

    def __init__(
        self, clock: FakeClock, ids: IdFactory, processing_seconds: float, process: Process
    ) -> None:
        self._clock = clock
        self._ids = ids
        self._processing_seconds = processing_seconds
        self._process = process
        self._batches: dict[str, _Batch] = {}
        self.base_url = ""

    def create(
        self, requests: list[tuple[str, Mapping[str, Any]]], betas: list[str]
    ) -> dict[str, Any]:
        """Store a new batch (always ``in_progress`` in the create response)."""
        delay = min(self._processing_seconds, EXPIRY_SECONDS)
        batch = _Batch(
            id=self._ids.batch_id(),
            requests=requests,
            betas=betas,
            created_at=self._clock.wall(),
            ends_at=self._clock.now() + delay,
        )
        self._batches[batch.id] = batch
        return self._json(batch)

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        """The batch object (processing it first if its time has come)."""
        return self._json(self._tick(self._get(batch_id)))

    def list(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        """A page of batches, newest first."""
        batches = [self._tick(b) for b in reversed(self._batches.values())]
        return paginate(batches, lambda b: b.id, self._json, query)

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Start cancelling (no effect once ended)."""
        batch = self._tick(self._get(batch_id))
        if batch.status == "in_progress":
            batch.status = "canceling"
            batch.cancel_initiated_at = self._clock.wall()
        return self._json(batch)

    def delete(self, batch_id: str) -> dict[str, Any]:
        """Delete an ended batch; 400 while it is still processing."""
        batch = self._tick(self._get(batch_id))
        if batch.status != "ended":
            raise invalid_request(
                f"Batch {batch_id} cannot be deleted while it is {batch.status}; "
                "cancel it and wait for it to end first."
            )
        del self._batches[batch_id]
        return {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str) -> bytes:
        """The JSONL results (one object per line, no blank lines); 400 before the end."""
        batch = self._tick(self._get(batch_id))
        if batch.status != "ended":
            raise invalid_request(f"Batch {batch_id} has not finished processing yet.")
        return "".join(
            json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"
            for line in batch.results
        ).encode("utf-8")

    def clear(self) -> None:
        """Forget every batch."""
        self._batches.clear()

    def _get(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise not_found(f"message_batch: {batch_id} not found")
        return batch

    def _tick(self, batch: _Batch) -> _Batch:
        if batch.status == "canceling":
            self._finish(batch, lambda cid: {"type": "canceled"})
        elif batch.status == "in_progress" and self._clock.now() >= batch.ends_at:
            if self._processing_seconds >= EXPIRY_SECONDS:
                self._finish(batch, lambda cid: {"type": "expired"})
            else:
                by_id = dict(batch.requests)
                self._finish(batch, lambda cid: self._process(cid, by_id[cid], batch.betas))
        return batch

    def _finish(self, batch: _Batch, outcome: Callable[[str], dict[str, Any]]) -> None:
        batch.results = [{"custom_id": cid, "result": outcome(cid)} for cid, _ in batch.requests]
        batch.status = "ended"
        batch.ended_at = self._clock.wall()

    def _json(self, batch: _Batch) -> dict[str, Any]:
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if batch.status == "ended":
            for line in batch.results:
                counts[line["result"]["type"]] += 1
        else:
            counts["processing"] = len(batch.requests)
        ended = batch.status == "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": counts,
            "created_at": rfc3339(batch.created_at),
            "expires_at": rfc3339(batch.created_at + timedelta(seconds=EXPIRY_SECONDS)),
            "ended_at": rfc3339(batch.ended_at) if batch.ended_at else None,
            "cancel_initiated_at": (
                rfc3339(batch.cancel_initiated_at) if batch.cancel_initiated_at else None
            ),
            "archived_at": None,
            "results_url": (
                f"{self.base_url}/v1/messages/batches/{batch.id}/results" if ended else None
            ),
        }
