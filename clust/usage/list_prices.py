"""The prices ``PriceTable.default()`` ships: Anthropic's public list prices.

Source: Anthropic's published list prices (anthropic.com/pricing and the "Pricing" page
of the API documentation) for the Claude 3.x and 4.x models, as they stood in November
2025. They were written down from that published table, not fetched at build time:
check them against the current page, and override or extend them with
``PriceTable.from_file`` or ``PriceTable.with_prices``. ``../shared/api/models.md``
(the wire reference this library follows) lists no prices.

- Amounts are USD per million tokens: base input and output. Cache writes cost
  1.25x input (5-minute TTL) or 2x input (1-hour TTL) and cache reads 0.1x input,
  except where the published table gives other figures (Claude 3 Haiku: writes
  $0.30, reads $0.03). The Batch API halves every amount (``service_tier`` "batch").
- ``effective_from`` is the snapshot date in the model's first dated id: the list
  price has applied since the model appeared, with one known exception: Claude 3.5
  Haiku launched at $1 / $5 and was cut to $0.80 / $4 in December 2024; only the
  later price is shipped (the day of the cut is not recorded here), so turns of its
  first weeks come out under-costed unless you add the launch price yourself.
- Entries are matched exactly or as a prefix of a longer id at a ``-`` boundary
  (``claude-sonnet-4-5`` prices ``claude-sonnet-4-5-20250929``). No entry is a short
  family prefix such as ``claude-opus-4``: that would price models not listed here
  (``claude-opus-4-6``) with another model's figures.
- Not modelled: the long-context rates of Sonnet 4 / 4.5 above 200K input tokens (1M
  context beta), regional (``inference_geo``) and priority-tier surcharges, and server
  tool fees (web search). Models without a published price known here (Claude 4.6 and
  later, the 5.x families, retired Claude 1/2/Instant) are absent: their cost is
  ``None``, never 0.
"""

from __future__ import annotations

from datetime import date

__all__ = ["LIST_PRICES", "LIST_PRICES_AS_OF"]

LIST_PRICES_AS_OF = date(2025, 11, 30)
"""When the shipped figures were last checked against the published table."""

# (model id or prefix, effective from, input, output, explicit cache rates or {}).
LIST_PRICES: tuple[tuple[str, date, str, str, dict[str, str]], ...] = (
    (
        "claude-3-haiku",
        date(2024, 3, 7),
        "0.25",
        "1.25",
        {"cache_write_5m": "0.30", "cache_read": "0.03"},
    ),
    ("claude-3-sonnet", date(2024, 2, 29), "3", "15", {}),
    ("claude-3-opus", date(2024, 2, 29), "15", "75", {}),
    ("claude-3-5-sonnet", date(2024, 6, 20), "3", "15", {}),
    ("claude-3-5-haiku", date(2024, 10, 22), "0.80", "4", {}),
    ("claude-3-7-sonnet", date(2025, 2, 19), "3", "15", {}),
    ("claude-sonnet-4-20250514", date(2025, 5, 14), "3", "15", {}),
    ("claude-sonnet-4-0", date(2025, 5, 14), "3", "15", {}),
    ("claude-opus-4-20250514", date(2025, 5, 14), "15", "75", {}),
    ("claude-opus-4-0", date(2025, 5, 14), "15", "75", {}),
    ("claude-opus-4-1", date(2025, 8, 5), "15", "75", {}),
    ("claude-sonnet-4-5", date(2025, 9, 29), "3", "15", {}),
    ("claude-haiku-4-5", date(2025, 10, 1), "1", "5", {}),
    ("claude-opus-4-5", date(2025, 11, 1), "5", "25", {}),
)
