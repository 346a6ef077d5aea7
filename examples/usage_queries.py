"""What did it cost? ``usage_report`` over the stored usage rows: by model, day and user.

Every reply a conversation stores leaves a usage row (tokens in/out, cache writes
5m/1h, cache reads). ``usage_report`` sums them in the database (GROUP BY in SQL) and
prices them with a ``PriceTable``: exact ``Decimal`` dollars, the cache hit ratio,
and what caching saved. A model with no known price costs ``None``, never 0.

Run: ``python examples/usage_queries.py [DATABASE_URL]`` (default: an SQLite file in a
temporary directory). Offline against FakeClaude unless ``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from _offline import MODEL, connect, database, reference_document

from clust import Store
from clust.messages import CacheControl, SystemPrompt
from clust.usage import Price, PriceTable, UsageReportRow, usage_report

SMALL_MODEL = "claude-haiku-5-5"

# The shipped table has Anthropic's published list prices; models it does not know
# (here, the 5.x models) get a price of your own. These figures are illustrative
# (USD per million tokens); cache writes default to 1.25x (5m) / 2x (1h) input and
# cache reads to 0.1x input. `PriceTable.from_file("prices.json")` reads them from JSON.
PRICES = PriceTable.default().with_prices(
    Price(MODEL, date(2025, 1, 1), input="3", output="15"),
    Price(SMALL_MODEL, date(2025, 1, 1), input="1", output="5"),
)


def usd(amount: Decimal | None) -> str:
    """Dollars to the micro-dollar; ``None`` (no price known) stays visible."""
    return "None" if amount is None else f"{amount:.6f}"


def show(title: str, rows: Sequence[UsageReportRow]) -> None:
    print(f"\n{title}")
    print(
        f"  {'key':<18} {'requests':>8} {'input':>6} {'write 5m':>8} {'read':>6} "
        f"{'output':>6} {'hit':>5} {'cost $':>10} {'saved $':>10}"
    )
    for row in rows:
        print(
            f"  {row.key!s:<18} {row.requests:>8} {row.input_tokens:>6} "
            f"{row.cache_write_5m_tokens:>8} {row.cache_read_tokens:>6} {row.output_tokens:>6} "
            f"{row.cache_hit_ratio:>5.0%} {usd(row.cost):>10} {usd(row.cache_savings):>10}"
        )


def main() -> None:
    # The long policy is cached (5 minutes): each conversation writes it once, and
    # every later turn reads it back at a tenth of the input price.
    system = SystemPrompt.from_text_blocks_with_cache_control(
        [("Answer in one sentence.\n" + reference_document(), CacheControl())]
    )
    with connect() as (client, _fake), database() as url, Store(url) as store:
        alice = store.create_conversation(
            model=MODEL, max_tokens=200, system=system, metadata={"user": "alice"}
        )
        for question in ("Can I return shoes?", "And a jacket?", "How long do refunds take?"):
            alice.send(client, question)
        bob = store.create_conversation(
            model=SMALL_MODEL, max_tokens=200, system=system, metadata={"user": "bob"}
        )
        for question in ("Where is my invoice?", "Can I change the address on it?"):
            bob.send(client, question)
        print(f"5 turns in 2 conversations ({MODEL} and {SMALL_MODEL}) stored in {url}")

        # Without prices for these models the cost is unknown: None, not 0.
        [unpriced] = usage_report(store)
        print(
            f"\nwith the shipped prices only: cost={unpriced.cost}, "
            f"unpriced_models={unpriced.unpriced_models}"
        )

        show("by model:", usage_report(store, by="model", prices=PRICES))
        week_ago = datetime.now(timezone.utc) - timedelta(days=7)
        show(
            "by day (UTC), last 7 days:",
            usage_report(store, by="day", since=week_ago, prices=PRICES),
        )
        show(
            "by user (metadata key 'user'):", usage_report(store, by="metadata:user", prices=PRICES)
        )

        [total] = usage_report(store, prices=PRICES)  # no `by`: one row of totals
        print(
            f"\ntotal: {total.requests} requests, {total.total_input_tokens} input tokens of "
            f"which {total.cache_read_tokens} read from the cache (hit ratio "
            f"{total.cache_hit_ratio:.1%}); cost ${usd(total.cost)}, caching saved "
            f"${usd(total.cache_savings)}"
        )
        alice_only = usage_report(store, metadata={"user": "alice"}, prices=PRICES)[0]
        print(f"alice alone: {alice_only.requests} requests, ${usd(alice_only.cost)}")


if __name__ == "__main__":
    main()
