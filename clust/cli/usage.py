"""``clust usage``: tokens, cost and cache savings of the stored requests, grouped.

A thin presenter over :func:`clust.usage.usage_report` (the sums run in the database).
Amounts are exact decimals written out in full, without trailing zeros (JSON:
strings); an unknown cost is ``n/a`` (JSON ``null``, CSV empty).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from clust.cli.common import CliError, database_url, open_store, parse_time
from clust.cli.table import format_table

if TYPE_CHECKING:
    from clust.usage import PriceTable, UsageReportRow

__all__ = ["add_parser", "amount", "attempt_notes", "report_json", "usage_table"]

_BY_CHOICES = "model, day, hour, conversation, stop_reason, user, metadata:KEY or total"


def amount(value: Decimal | None) -> str:
    """An amount exactly, in fixed point without trailing zeros (``10.84``, never
    ``1.084E+1`` nor rounded), or ``n/a``."""
    if value is None:
        return "n/a"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _grouping(text: str) -> str:
    from clust.usage import GROUPINGS

    if text in (*GROUPINGS, "total"):
        return text
    if text == "user":
        return "metadata:user"
    if text.startswith("metadata:") and len(text) > len("metadata:"):
        return text
    raise argparse.ArgumentTypeError(f"invalid --by {text!r}: use {_BY_CHOICES}")


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use an ISO date or date-time, e.g. 2026-03-01 or "
            "2026-03-01T12:00:00Z (UTC unless an offset is given)"
        ) from None


def add_parser(commands: Any) -> None:
    """Register ``clust usage``."""
    parser = commands.add_parser(
        "usage",
        help="tokens, cost and cache savings of the stored requests",
        description="Tokens, cost and cache savings of the stored requests, summed in SQL.",
    )
    parser.add_argument(
        "--by",
        type=_grouping,
        default="model",
        metavar="GROUP",
        help=f"group by {_BY_CHOICES} (default: model; user = metadata:user)",
    )
    parser.add_argument("--since", type=_time, help="only requests started at or after (ISO)")
    parser.add_argument("--until", type=_time, help="only requests started before (ISO)")
    parser.add_argument("--model", help="only this model id")
    parser.add_argument("--conversation", metavar="ID", help="only this conversation")
    parser.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output (table)"
    )
    parser.add_argument(
        "--prices",
        metavar="FILE",
        help="a JSON price file added to the shipped list prices (see clust.usage.pricing)",
    )
    parser.add_argument("--db", metavar="URL", help="database URL (see `clust --help`)")
    parser.set_defaults(run=run)


def load_prices(path: str | None) -> PriceTable:
    """The shipped list prices, plus those of ``path`` when given."""
    from clust.usage import PriceTable

    table = PriceTable.default()
    return table if path is None else PriceTable.from_file(path, base=table)


def run(args: argparse.Namespace) -> int:
    from clust.usage import usage_report

    if args.since and args.until and args.since >= args.until:
        raise CliError("--since must be before --until", code=2)
    prices = load_prices(args.prices)
    by = None if args.by == "total" else args.by
    filters = {
        "since": args.since,
        "until": args.until,
        "model": args.model,
        "conversation_id": args.conversation,
        "prices": prices,
    }
    with open_store(database_url(args.db)) as store:
        rows = usage_report(store, by=by, **filters)
        total = rows[0] if by is None else usage_report(store, **filters)[0]
    if by is None:
        rows = []
    if args.format == "json":
        print(json.dumps(report_json(by, rows, total), indent=2, ensure_ascii=False))
    elif args.format == "csv":
        print(report_csv(by, rows if by is not None else [total]), end="")
    else:
        print(usage_table(by, rows, total))
    return 0


# -- presentation -------------------------------------------------------------------------


def key_text(key: Any) -> str:
    """A group key for a table cell."""
    if key is None:
        return "(none)"
    if isinstance(key, datetime):
        return key.strftime("%Y-%m-%d %H:00 UTC")
    if isinstance(key, (date, str)):
        return str(key)
    return json.dumps(key, ensure_ascii=False)


def _key_json(key: Any) -> Any:
    if isinstance(key, (date, datetime)):
        return key.isoformat()
    return key


def _row_json(row: UsageReportRow) -> dict[str, Any]:
    return {
        "requests": row.requests,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_write_5m_tokens": row.cache_write_5m_tokens,
        "cache_write_1h_tokens": row.cache_write_1h_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_hit_ratio": row.cache_hit_ratio,
        "cost_usd": None if row.cost is None else amount(row.cost),
        "cache_savings_usd": None if row.cache_savings is None else amount(row.cache_savings),
        "unpriced_models": list(row.unpriced_models),
        "unknown_attempts": row.unknown_attempts,
        "in_flight_attempts": row.in_flight_attempts,
    }


def report_json(
    by: str | None, rows: list[UsageReportRow], total: UsageReportRow
) -> dict[str, Any]:
    """The report as a JSON document: ``{"by", "rows": [{"key", ...}], "total"}``."""
    return {
        "by": by,
        "rows": [{"key": _key_json(row.key), **_row_json(row)} for row in rows],
        "total": _row_json(total),
    }


def _key_csv(by: str | None, key: Any) -> str:
    if by is None:
        return "total"
    if key is None:
        return ""
    if isinstance(key, (date, datetime)):
        return key.isoformat()
    return key if isinstance(key, str) else json.dumps(key, ensure_ascii=False)


_FIELDS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "cache_hit_ratio",
    "cost_usd",
    "cache_savings_usd",
    "unpriced_models",
    "unknown_attempts",
    "in_flight_attempts",
)


def report_csv(by: str | None, rows: list[UsageReportRow]) -> str:
    """One CSV line per group (header first); an unknown cost is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([by or "total", *_FIELDS])
    for row in rows:
        values = _row_json(row)
        values["unpriced_models"] = " ".join(row.unpriced_models)
        cells = ["" if values[name] is None else values[name] for name in _FIELDS]
        writer.writerow([_key_csv(by, row.key), *cells])
    return out.getvalue()


_HEADERS = (
    "requests",
    "input",
    "output",
    "cache write 5m",
    "cache write 1h",
    "cache read",
    "hit ratio",
    "cost USD",
    "saved by cache USD",
)


def _cells(label: str, row: UsageReportRow) -> list[str]:
    return [
        label,
        f"{row.requests:,}",
        f"{row.input_tokens:,}",
        f"{row.output_tokens:,}",
        f"{row.cache_write_5m_tokens:,}",
        f"{row.cache_write_1h_tokens:,}",
        f"{row.cache_read_tokens:,}",
        f"{row.cache_hit_ratio:.1%}",
        amount(row.cost),
        amount(row.cache_savings),
    ]


def usage_table(by: str | None, rows: list[UsageReportRow], total: UsageReportRow) -> str:
    """The report as a text table with a total line and a note on unknown prices."""
    headers = [by.removeprefix("metadata:") if by else "", *_HEADERS]
    right = [False, *([True] * len(_HEADERS))]
    body = [_cells(key_text(row.key), row) for row in rows]
    if by is not None and not rows:
        text = "no stored requests match"
    elif by is None or len(rows) == 1:  # one group: its line is the total
        text = format_table(headers, body or [_cells("total", total)], right=right)
    else:
        text = format_table(headers, body, right=right, footer=[_cells("total", total)])
    if total.unpriced_models:
        text += (
            f"\nn/a: no price known for {', '.join(total.unpriced_models)} "
            "(give one with --prices FILE)"
        )
    return text + "".join(f"\n{line}" for line in attempt_notes(total))


def _attempts(count: int) -> str:
    return f"{count:,} attempt{'' if count == 1 else 's'}"


def attempt_notes(row: UsageReportRow) -> list[str]:
    """Lines on the requests a report's counts leave out: of unknown outcome (maybe
    billed) and in flight."""
    notes = []
    if row.unknown_attempts:
        notes.append(
            f"unknown outcome: {_attempts(row.unknown_attempts)} that may have been billed "
            "(their process died before the reply; not in the counts above)"
        )
    if row.in_flight_attempts:
        notes.append(f"in flight: {_attempts(row.in_flight_attempts)} being sent now")
    return notes
