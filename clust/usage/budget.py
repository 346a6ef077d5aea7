"""Spending limits checked before a request leaves: per conversation, or per value of a
conversation metadata key (e.g. per user id).

Spent amounts come from the usage ledger (every billed request, interrupted streams
included), priced by :class:`~clust.usage.PriceTable`. The request's own cost is
bounded from above: its input tokens estimated from the request body's size (one
token per 3 bytes of JSON, more than real text takes, so the check errs towards
refusing) at the input price, plus ``max_tokens`` at the output price. Counting the
tokens exactly would cost a request to the API every time.

Requests in flight count too. A send's check runs in the write transaction that
claims its conversation and writes its intent row in the usage ledger, and that row
carries the estimate (its *reservation*: ``reserved_input_tokens`` and
``reserved_output_tokens``); spending is the priced ledger plus the reservations of
rows still ``unknown`` (in flight, or whose process died: maybe billed). Two senders
of one budget take turns on that transaction (``BEGIN IMMEDIATE`` on SQLite; on
PostgreSQL an advisory transaction lock keyed by the budget's scope), so the second
sees the first's reservation: concurrent senders cannot all pass one limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, select, text

from clust.messages.errors import BudgetExceeded, InvalidParameter, StoreError
from clust.messages.storable import check_text
from clust.store.nul_text import encode_text
from clust.store.repository import conversations, metadata_matches, usage
from clust.usage.pricing import Price, PriceTable
from clust.usage.report import usage_report

__all__ = ["Budget", "Reservation", "Spending", "check_budgets"]

_BYTES_PER_TOKEN = 3
_MILLION = Decimal(1_000_000)
# The first key of the budgets' PostgreSQL advisory locks ("clus"); the second is the
# hash of the budget's scope.
_LOCK_SPACE = 0x636C7573
_LIMIT_FORM = "a USD amount >= 0 as a Decimal, int or str, e.g. '5.00' (no floats)"


class Reservation(NamedTuple):
    """What a request may use at most, as its intent row reserves it: input tokens
    estimated from the body's size, and ``max_tokens`` of output."""

    input_tokens: int
    output_tokens: int

    def cost(self, price: Price) -> Decimal:
        """The reservation at ``price`` (USD)."""
        tokens = Decimal(self.input_tokens) * price.input
        return (tokens + Decimal(self.output_tokens) * price.output) / _MILLION


@dataclass(frozen=True)
class Budget:
    """A USD spending limit: ``Budget("5.00")`` per conversation, or
    ``Budget("20", per="metadata:user")`` shared by the conversations whose metadata
    has the same ``user`` value (conversations without that key are not limited)."""

    limit: Decimal | str | int
    per: str = "conversation"

    def __post_init__(self) -> None:
        if isinstance(self.limit, (float, bool)) or not isinstance(self.limit, (Decimal, str, int)):
            raise InvalidParameter("limit", self.limit, _LIMIT_FORM)
        try:
            amount = Decimal(self.limit)
        except (InvalidOperation, ValueError) as exc:
            raise InvalidParameter("limit", self.limit, _LIMIT_FORM) from exc
        if not amount.is_finite() or amount < 0:
            raise InvalidParameter("limit", self.limit, _LIMIT_FORM)
        object.__setattr__(self, "limit", amount)
        if not isinstance(self.per, str) or (
            self.per != "conversation"
            and not (self.per.startswith("metadata:") and len(self.per) > len("metadata:"))
        ):
            raise InvalidParameter("per", self.per, "'conversation' or 'metadata:<key>'")
        check_text("per", self.per)


def check_budgets(
    source: Engine | Connection,
    budgets: tuple[Budget, ...],
    prices: PriceTable,
    *,
    conversation_id: str,
    metadata: Mapping[str, Any],
    model: str,
    body_size: int,
    max_tokens: int,
    lock: bool = False,
) -> Reservation:
    """Raise :class:`BudgetExceeded` if the request would pass any budget: what was
    spent (billed usage, and the reservations of requests still in flight or of
    unknown outcome) plus this request's estimate. Returns that estimate, the
    reservation its intent row should carry.

    ``lock``: ``source`` is the write transaction that will write the intent row;
    on PostgreSQL each budget's scope is locked until it ends (SQLite's write
    transactions already take turns).
    """
    reservation = Reservation(math.ceil(body_size / _BYTES_PER_TOKEN), max_tokens)
    if not budgets:
        return reservation
    now = datetime.now(timezone.utc)
    price = prices.price_for(model, now)
    if price is None:
        raise StoreError(
            f"no price for model {model!r}: budgets need one (add it to the PriceTable)"
        )
    estimate = reservation.cost(price)
    scopes: list[tuple[Budget, str, dict[str, Any]]] = []
    for budget in budgets:
        if budget.per == "conversation":
            scope = f"conversation {conversation_id}"
            scopes.append((budget, scope, {"conversation_id": conversation_id}))
        else:
            key = budget.per.removeprefix("metadata:")
            if key in metadata:
                scope = f"metadata {key}={metadata[key]!r}"
                scopes.append((budget, scope, {"metadata": {key: metadata[key]}}))
    with _connected(source) as connection:
        if lock and connection.dialect.name == "postgresql":
            # Sorted: two senders lock shared scopes in the same order (no deadlock).
            for scope in sorted({scope for _, scope, _ in scopes}):
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:space, hashtext(:scope))"),
                    {"space": _LOCK_SPACE, "scope": encode_text(scope)},
                )
        for budget, scope, filters in scopes:
            rows = usage_report(connection, prices=prices, **filters)
            spent = rows[0].cost if rows else Decimal(0)
            if spent is None:
                raise StoreError(f"budget of {scope}: some of its usage has no known price")
            spent += _reserved(connection, scope, filters, prices, now)
            limit = Decimal(budget.limit)
            if spent + estimate > limit:
                raise BudgetExceeded(
                    scope,
                    limit=limit,
                    spent=spent,
                    estimate=estimate.quantize(Decimal("0.000001")),
                )
    return reservation


@contextmanager
def _connected(source: Engine | Connection) -> Iterator[Connection]:
    if isinstance(source, Connection):
        yield source
        return
    with source.connect() as connection:
        yield connection


def _reserved(
    connection: Connection,
    scope: str,
    filters: Mapping[str, Any],
    prices: PriceTable,
    now: datetime,
) -> Decimal:
    """The reservations of the scope's requests still ``unknown`` (in flight, or their
    process died: maybe billed), at today's prices."""
    source: Any = usage
    terms = [usage.c.outcome == "unknown", usage.c.reserved_input_tokens.is_not(None)]
    if "conversation_id" in filters:
        terms.append(usage.c.conversation_id == filters["conversation_id"])
    else:
        source = usage.join(conversations, conversations.c.id == usage.c.conversation_id)
        terms.append(metadata_matches(connection, filters["metadata"]))
    found = connection.execute(
        select(
            usage.c.model,
            func.sum(usage.c.reserved_input_tokens),
            func.sum(usage.c.reserved_output_tokens),
        )
        .select_from(source)
        .where(*terms)
        .group_by(usage.c.model)
    ).all()
    total = Decimal(0)
    for model, input_tokens, output_tokens in found:
        price = prices.price_for(model, now)
        if price is None:
            raise StoreError(f"budget of {scope}: no price for model {model!r} of a request")
        total += Reservation(int(input_tokens or 0), int(output_tokens or 0)).cost(price)
    return total


@dataclass(frozen=True)
class Spending:
    """The budgets a store enforces and the prices it counts them with."""

    budgets: tuple[Budget, ...]
    prices: PriceTable

    def check(
        self,
        engine: Engine,
        *,
        conversation_id: str,
        metadata: Mapping[str, Any],
        model: str,
        body_size: int,
        max_tokens: int,
    ) -> None:
        """Raise :class:`BudgetExceeded` if the request would pass any budget (a check
        ahead of time: :meth:`reserve` is the one that holds)."""
        check_budgets(
            engine,
            self.budgets,
            self.prices,
            conversation_id=conversation_id,
            metadata=metadata,
            model=model,
            body_size=body_size,
            max_tokens=max_tokens,
        )

    def reserve(
        self,
        connection: Connection,
        *,
        conversation_id: str,
        metadata: Mapping[str, Any],
        model: str,
        body_size: int,
        max_tokens: int,
    ) -> Reservation:
        """Check the budgets inside the write transaction ``connection`` that writes the
        request's intent row, and return the reservation that row must carry; the
        scopes stay locked until that transaction ends (see the module docstring).

        Raises:
            BudgetExceeded: the request would pass a budget (roll the transaction back).
        """
        return check_budgets(
            connection,
            self.budgets,
            self.prices,
            conversation_id=conversation_id,
            metadata=metadata,
            model=model,
            body_size=body_size,
            max_tokens=max_tokens,
            lock=True,
        )
