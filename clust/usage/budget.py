"""Spending limits checked before a request leaves: per conversation, or per value of a
conversation metadata key (e.g. per user id).

Spent amounts come from the usage ledger (every billed request, interrupted streams
included), priced by :class:`~clust.usage.PriceTable`. The request's own cost is
bounded from above: its input tokens estimated from the request body's size (one
token per 3 bytes of JSON, more than real text takes, so the check errs towards
refusing) at the input price, plus ``max_tokens`` at the output price. Counting the
tokens exactly would cost a request to the API every time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from clust.messages.errors import BudgetExceeded, InvalidParameter, StoreError
from clust.usage.pricing import PriceTable
from clust.usage.report import usage_report

__all__ = ["Budget", "Spending", "check_budgets"]

_BYTES_PER_TOKEN = 3
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Budget:
    """A USD spending limit: ``Budget("5.00")`` per conversation, or
    ``Budget("20", per="metadata:user")`` shared by the conversations whose metadata
    has the same ``user`` value (conversations without that key are not limited)."""

    limit: Decimal | str | int
    per: str = "conversation"

    def __post_init__(self) -> None:
        if isinstance(self.limit, (float, bool)):
            raise InvalidParameter("limit", self.limit, "a Decimal, int or str amount (no floats)")
        amount = Decimal(self.limit)
        if not amount.is_finite() or amount < 0:
            raise InvalidParameter("limit", self.limit, "an amount >= 0")
        object.__setattr__(self, "limit", amount)
        if self.per != "conversation" and not (
            self.per.startswith("metadata:") and len(self.per) > len("metadata:")
        ):
            raise InvalidParameter("per", self.per, "'conversation' or 'metadata:<key>'")


def check_budgets(
    engine: Engine,
    budgets: tuple[Budget, ...],
    prices: PriceTable,
    *,
    conversation_id: str,
    metadata: Mapping[str, Any],
    model: str,
    body_size: int,
    max_tokens: int,
) -> None:
    """Raise :class:`BudgetExceeded` if the request would pass any budget."""
    if not budgets:
        return
    price = prices.price_for(model, datetime.now(timezone.utc))
    if price is None:
        raise StoreError(
            f"no price for model {model!r}: budgets need one (add it to the PriceTable)"
        )
    input_tokens = math.ceil(body_size / _BYTES_PER_TOKEN)
    estimate = (Decimal(input_tokens) * price.input + Decimal(max_tokens) * price.output) / _MILLION
    for budget in budgets:
        if budget.per == "conversation":
            scope = f"conversation {conversation_id}"
            rows = usage_report(engine, conversation_id=conversation_id, prices=prices)
        else:
            key = budget.per.removeprefix("metadata:")
            if key not in metadata:
                continue
            scope = f"metadata {key}={metadata[key]!r}"
            rows = usage_report(engine, metadata={key: metadata[key]}, prices=prices)
        spent = rows[0].cost if rows else Decimal(0)
        if spent is None:
            raise StoreError(f"budget of {scope}: some of its usage has no known price")
        limit = Decimal(budget.limit)
        if spent + estimate > limit:
            raise BudgetExceeded(
                scope, limit=limit, spent=spent, estimate=estimate.quantize(Decimal("0.000001"))
            )


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
        """Raise :class:`BudgetExceeded` if the request would pass any budget."""
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
