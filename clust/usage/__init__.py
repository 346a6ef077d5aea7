"""Usage and cost: what the stored requests cost, by model, day, conversation or user.

- :func:`usage_report` sums the ``clust_usage`` rows in the database (filters and
  GROUP BY pushed down to SQL) and prices them: tokens, cache hit ratio, cost and
  cache savings per group.
- :class:`PriceTable` / :class:`Price`: prices per model with effective dates, the
  shipped list prices (:meth:`PriceTable.default`), a JSON price file or your own.
- :func:`cost_of` / :func:`cache_savings`: the same arithmetic for one row or totals.
- :class:`Budget`: spending limits per conversation or per metadata value, checked
  before each request (``Store(url, budgets=[...])``).

Amounts are exact :class:`~decimal.Decimal` USD; an unknown model costs ``None``.
"""

from __future__ import annotations

from clust.usage.budget import Budget, Spending, check_budgets
from clust.usage.cost import TokenCounts, UsageCounts, cache_savings, cost_of
from clust.usage.pricing import BATCH_DISCOUNT, Price, PriceTable
from clust.usage.report import HasEngine, UsageReportRow, usage_report
from clust.usage.statement import GROUPINGS

__all__ = [
    "BATCH_DISCOUNT",
    "GROUPINGS",
    "Budget",
    "HasEngine",
    "Price",
    "PriceTable",
    "Spending",
    "TokenCounts",
    "UsageCounts",
    "UsageReportRow",
    "cache_savings",
    "check_budgets",
    "cost_of",
    "usage_report",
]
