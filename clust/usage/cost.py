"""What token counts cost at a given price, and what prompt caching saved.

Cache writes are priced from the TTL split columns (``cache_creation_5m_input_tokens``,
``cache_creation_1h_input_tokens``; the store files a write without a split as 5m,
the API's default TTL). Amounts are exact: computed in a decimal context of their
own, so the caller's context precision never rounds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Protocol

from clust.usage.pricing import Price

__all__ = ["TokenCounts", "UsageCounts", "cache_savings", "cost_of"]

_MILLION = Decimal(1_000_000)


class UsageCounts(Protocol):
    """Token counts under the ``clust_usage`` column names: a ``UsageTotals``, a
    ``UsageRow``, a row selected from ``clust_usage``."""

    @property
    def input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...

    @property
    def cache_creation_5m_input_tokens(self) -> int: ...

    @property
    def cache_creation_1h_input_tokens(self) -> int: ...

    @property
    def cache_read_input_tokens(self) -> int: ...


@dataclass(frozen=True)
class TokenCounts:
    """Token counts of one request or summed over many (a :class:`UsageCounts`)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    cache_read_input_tokens: int = 0


def _is_batch(usage: UsageCounts, batch: bool | None) -> bool:
    if batch is not None:
        return batch
    return getattr(usage, "service_tier", None) == "batch"


def _priced(terms: list[tuple[int, Decimal]], factor: Decimal) -> Decimal:
    with localcontext() as context:
        context.prec = 60  # exact for any realistic count and price
        total = sum((Decimal(tokens) * rate for tokens, rate in terms), Decimal(0))
        amount = total * factor / _MILLION
    return amount if amount else Decimal(0)  # 0, not 0E-6


def cost_of(usage: UsageCounts, price: Price, *, batch: bool | None = None) -> Decimal:
    """USD cost of ``usage`` at ``price``: uncached input, output, 5m and 1h cache
    writes and cache reads, each at its rate; halved (``price.batch_discount``) for a
    Batch API request. ``batch=None`` reads ``usage.service_tier == "batch"`` when
    ``usage`` has that attribute (a usage row does), else takes a standard request."""
    factor = price.batch_discount if _is_batch(usage, batch) else Decimal(1)
    return _priced(
        [
            (usage.input_tokens, price.input),
            (usage.output_tokens, price.output),
            (usage.cache_creation_5m_input_tokens, price.cache_write_5m),
            (usage.cache_creation_1h_input_tokens, price.cache_write_1h),
            (usage.cache_read_input_tokens, price.cache_read),
        ],
        factor,
    )


def cache_savings(usage: UsageCounts, price: Price, *, batch: bool | None = None) -> Decimal:
    """What caching saved: the cost had every cache write and read been plain input,
    minus the actual cost. Negative when writes (1.25x / 2x input) outweighed reads
    (0.1x input), e.g. a cache written and never read again."""
    factor = price.batch_discount if _is_batch(usage, batch) else Decimal(1)
    return _priced(
        [
            (usage.cache_creation_5m_input_tokens, price.input - price.cache_write_5m),
            (usage.cache_creation_1h_input_tokens, price.input - price.cache_write_1h),
            (usage.cache_read_input_tokens, price.input - price.cache_read),
        ],
        factor,
    )
