"""``cost_of`` and ``cache_savings`` on totals and rows, by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext

from clust.conversation import UsageTotals
from clust.usage import Price, TokenCounts, cache_savings, cost_of

PRICE = Price("m", date(2026, 1, 1), 3, 15)  # 5m 3.75, 1h 6, read 0.30


def test_each_kind_of_token_at_its_rate() -> None:
    assert cost_of(TokenCounts(input_tokens=1_000_000), PRICE) == Decimal(3)
    assert cost_of(TokenCounts(output_tokens=1_000_000), PRICE) == Decimal(15)
    assert cost_of(TokenCounts(cache_creation_5m_input_tokens=1_000_000), PRICE) == Decimal("3.75")
    assert cost_of(TokenCounts(cache_creation_1h_input_tokens=1_000_000), PRICE) == Decimal(6)
    assert cost_of(TokenCounts(cache_read_input_tokens=1_000_000), PRICE) == Decimal("0.3")
    assert cost_of(TokenCounts(input_tokens=1), PRICE) == Decimal("0.000003")
    assert str(cost_of(TokenCounts(), PRICE)) == "0"


def test_usage_totals_of_a_conversation() -> None:
    totals = UsageTotals(
        requests=3,
        input_tokens=1_234,
        output_tokens=567,
        cache_creation_input_tokens=3_000,
        cache_creation_5m_input_tokens=2_000,
        cache_creation_1h_input_tokens=1_000,
        cache_read_input_tokens=10_000,
    )
    # 1234 x 3 + 567 x 15 + 2000 x 3.75 + 1000 x 6 + 10000 x 0.30 = 3702 + 8505 + 7500 + 6000
    # + 3000 = 28707 per million
    assert cost_of(totals, PRICE) == Decimal("0.028707")
    # 2000 x (3 - 3.75) + 1000 x (3 - 6) + 10000 x (3 - 0.30) = -1500 - 3000 + 27000 = 22500
    assert cache_savings(totals, PRICE) == Decimal("0.0225")
    assert cost_of(totals, PRICE, batch=True) == Decimal("0.0143535")
    assert cache_savings(totals, PRICE, batch=True) == Decimal("0.01125")


def test_savings_negative_when_writes_are_not_read() -> None:
    written = TokenCounts(cache_creation_1h_input_tokens=500_000)
    assert cache_savings(written, PRICE) == Decimal("-1.5")


@dataclass
class Row:
    """Like a ``clust_usage`` row: counts and a service tier."""

    input_tokens: int
    output_tokens: int
    cache_creation_5m_input_tokens: int
    cache_creation_1h_input_tokens: int
    cache_read_input_tokens: int
    service_tier: str | None


def test_batch_read_from_the_service_tier() -> None:
    batch = Row(2_000_000, 0, 0, 0, 0, "batch")
    assert cost_of(batch, PRICE) == Decimal(3)
    assert cost_of(batch, PRICE, batch=False) == Decimal(6)
    assert cost_of(Row(2_000_000, 0, 0, 0, 0, "priority"), PRICE) == Decimal(6)


def test_exact_whatever_the_decimal_context() -> None:
    counts = TokenCounts(input_tokens=123_456_789_012, output_tokens=987_654_321)
    expected = Decimal("370370.367036") + Decimal("14814.814815")
    with localcontext() as context:
        context.prec = 4
        assert cost_of(counts, PRICE) == expected
