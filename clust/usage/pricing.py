"""Prices per model, each with the day it took effect, and the table that finds the
price in force when a request was made.

Amounts are :class:`~decimal.Decimal` USD per million tokens, never floats.

The price file read by :meth:`PriceTable.from_file` is JSON (``tomllib`` is not in
Python 3.10): an object with a ``prices`` list, or the list itself. Each entry has
``model``, ``effective_from`` (``YYYY-MM-DD``, UTC), ``input`` and ``output``, and
optionally ``cache_write_5m``, ``cache_write_1h``, ``cache_read`` (default 1.25x, 2x
and 0.1x ``input``) and ``batch_discount`` (default 0.5). Write amounts as strings
(``"3.75"``) or JSON numbers; both are read as exact decimals::

    {"prices": [
      {"model": "claude-sonnet-4-5", "effective_from": "2025-09-29",
       "input": "3", "output": "15"},
      {"model": "my-fine-tune", "effective_from": "2026-01-01",
       "input": "2", "output": "8", "cache_read": "0.25"}
    ]}
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from os import PathLike
from pathlib import Path
from typing import Any

from clust.messages.errors import InvalidParameter
from clust.usage.list_prices import LIST_PRICES

__all__ = [
    "BATCH_DISCOUNT",
    "CACHE_READ_FACTOR",
    "CACHE_WRITE_1H_FACTOR",
    "CACHE_WRITE_5M_FACTOR",
    "MAX_AMOUNT",
    "Price",
    "PriceTable",
]

CACHE_WRITE_5M_FACTOR = Decimal("1.25")
CACHE_WRITE_1H_FACTOR = Decimal("2")
CACHE_READ_FACTOR = Decimal("0.1")
BATCH_DISCOUNT = Decimal("0.5")

Amount = Decimal | int | str
"""What a price accepts: a ``Decimal``, an ``int`` or a decimal string (no floats)."""

_AMOUNT_FIELDS = ("cache_write_5m", "cache_write_1h", "cache_read", "batch_discount")

MAX_AMOUNT = Decimal(1_000_000_000)
"""The largest amount a price takes (USD per million tokens)."""
_PLACES = 12  # decimal places an amount may have
_ALLOWED = f"a finite amount from 0 to {MAX_AMOUNT:,} with at most {_PLACES} decimal places"
_MAX_DEPTH = 32  # nesting of arrays and objects in a price file (it needs 3)
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _amount(field: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidParameter(field, value, "a Decimal, an int or a decimal string (no float)")
    try:
        amount = Decimal(value)
    except (ArithmeticError, ValueError) as error:  # ValueError: an int too long to convert
        raise InvalidParameter(field, value, "a decimal number") from error
    # Checked before any arithmetic: 1e999999999 is a valid Decimal that overflows
    # the moment it is multiplied.
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise InvalidParameter(field, value, _ALLOWED)
    if _places(amount) > _PLACES:
        raise InvalidParameter(field, value, _ALLOWED)
    return amount


def _places(amount: Decimal) -> int:
    """Decimal places of a finite ``amount``, trailing zeros aside (no context used)."""
    _, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):  # NaN or infinity: refused before
        return 0
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing)) if any(digits) else 0


def _nesting(text: str) -> int:
    """How deep arrays and objects nest in the JSON ``text`` (strings skipped), counted
    without recursion, up to one past :data:`_MAX_DEPTH`."""
    depth = deepest = 0
    for token in _TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > _MAX_DEPTH:
                    break
        elif char in "]}":
            depth -= 1
    return deepest


@dataclass(frozen=True, init=False)
class Price:
    """What one model costs from ``effective_from`` on, in USD per million tokens.

    Attributes:
        model: a model id (``claude-sonnet-4-5-20250929``) or a prefix of ids
            (``claude-sonnet-4-5``), see :meth:`PriceTable.price_for`.
        effective_from: the first day (UTC) this price applies.
        input, output: base input and output price.
        cache_write_5m, cache_write_1h: price of tokens written to the cache with a
            5-minute / 1-hour TTL (default 1.25x / 2x ``input``).
        cache_read: price of tokens read from the cache (default 0.1x ``input``).
        batch_discount: factor applied to the whole cost of a Batch API request
            (default 0.5).
    """

    model: str
    effective_from: date
    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    batch_discount: Decimal

    def __init__(
        self,
        model: str,
        effective_from: date,
        input: Amount,
        output: Amount,
        *,
        cache_write_5m: Amount | None = None,
        cache_write_1h: Amount | None = None,
        cache_read: Amount | None = None,
        batch_discount: Amount = BATCH_DISCOUNT,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise InvalidParameter("model", model, "a model id or id prefix")
        if isinstance(effective_from, datetime) or not isinstance(effective_from, date):
            raise InvalidParameter("effective_from", effective_from, "a datetime.date")
        base = _amount("input", input)
        discount = _amount("batch_discount", batch_discount)
        if discount > 1:
            raise InvalidParameter("batch_discount", batch_discount, "a factor between 0 and 1")
        explicit = {
            "cache_write_5m": (cache_write_5m, CACHE_WRITE_5M_FACTOR),
            "cache_write_1h": (cache_write_1h, CACHE_WRITE_1H_FACTOR),
            "cache_read": (cache_read, CACHE_READ_FACTOR),
        }
        values: dict[str, object] = {
            "model": model,
            "effective_from": effective_from,
            "input": base,
            "output": _amount("output", output),
            "batch_discount": discount,
        }
        for name, (given, factor) in explicit.items():
            values[name] = base * factor if given is None else _amount(name, given)
        for name, value in values.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    @classmethod
    def from_mapping(cls, entry: Mapping[str, Any]) -> Price:
        """A price from one entry of a price file (see the module docstring)."""
        allowed = {"model", "effective_from", "input", "output", *_AMOUNT_FIELDS}
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise InvalidParameter(unknown[0], entry[unknown[0]], f"one of {sorted(allowed)}")
        for required in ("model", "effective_from", "input", "output"):
            if required not in entry:
                raise InvalidParameter(required, None, "a value (the field is required)")
        raw_date = entry["effective_from"]
        try:
            effective = date.fromisoformat(raw_date) if isinstance(raw_date, str) else raw_date
        except ValueError as error:
            raise InvalidParameter("effective_from", raw_date, "a YYYY-MM-DD date") from error
        return cls(
            entry["model"],
            effective,
            entry["input"],
            entry["output"],
            **{name: entry[name] for name in _AMOUNT_FIELDS if name in entry},
        )

    def as_mapping(self) -> dict[str, str]:
        """This price as a price-file entry (amounts as decimal strings)."""
        entry = {"model": self.model, "effective_from": self.effective_from.isoformat()}
        for name in ("input", "output", *_AMOUNT_FIELDS):
            entry[name] = str(getattr(self, name))
        return entry


def _day(at: datetime | date) -> date:
    """The UTC day of ``at`` (a naive datetime is taken as UTC)."""
    if isinstance(at, datetime):
        if at.tzinfo is not None:
            at = at.astimezone(timezone.utc)
        return at.date()
    return at


class PriceTable:
    """Prices by model and effective date; immutable (``with_prices`` returns a copy).

    >>> table = PriceTable.default().with_prices(
    ...     Price("my-model", date(2026, 1, 1), "2", "8"))
    >>> table.price_for("claude-sonnet-4-5-20250929", datetime(2026, 1, 1)).output
    Decimal('15')
    """

    __slots__ = ("_by_model", "_candidates")

    def __init__(self, prices: Iterable[Price] = ()) -> None:
        """A table of ``prices``; a later price with the same model and date replaces
        an earlier one."""
        latest: dict[tuple[str, date], Price] = {}
        for price in prices:
            if not isinstance(price, Price):
                raise InvalidParameter("prices", price, "Price objects")
            latest[(price.model, price.effective_from)] = price
        by_model: dict[str, list[Price]] = {}
        for key in sorted(latest):
            by_model.setdefault(key[0], []).append(latest[key])
        self._by_model = by_model
        self._candidates: dict[str, tuple[str, ...]] = {}

    @classmethod
    def default(cls) -> PriceTable:
        """Anthropic's public list prices (see :mod:`clust.usage.list_prices`)."""
        return cls(
            Price(model, effective, input_price, output_price, **rates)
            for model, effective, input_price, output_price, rates in LIST_PRICES
        )

    @classmethod
    def from_file(cls, path: str | PathLike[str], *, base: PriceTable | None = None) -> PriceTable:
        """The prices of a JSON price file (format in the module docstring), added to
        ``base`` (none by default; pass ``PriceTable.default()`` to extend the shipped
        prices), the file's entries replacing ``base``'s for the same model and date."""
        location = Path(path)
        try:
            text = location.read_text(encoding="utf-8")
        except (OSError, ValueError) as error:
            raise InvalidParameter(
                "path", str(location), f"a readable UTF-8 price file ({error})"
            ) from error
        if _nesting(text) > _MAX_DEPTH:
            raise InvalidParameter(
                "path", str(location), f"a JSON price file nested at most {_MAX_DEPTH} deep"
            )
        try:
            document = json.loads(text, parse_float=Decimal)
        except (ValueError, RecursionError) as error:
            raise InvalidParameter("path", str(location), f"a JSON price file ({error})") from error
        entries = document.get("prices") if isinstance(document, dict) else document
        if not isinstance(entries, list):
            raise InvalidParameter("path", str(location), 'a list of prices or {"prices": [...]}')
        prices = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise InvalidParameter(f"prices[{index}]", entry, "an object")
            try:
                prices.append(Price.from_mapping(entry))
            except InvalidParameter as error:
                raise InvalidParameter(
                    f"{location}: prices[{index}].{error.field}", error.value, error.allowed
                ) from error
        return (base or cls()).with_prices(*prices)

    def with_prices(self, *prices: Price) -> PriceTable:
        """A copy of this table with ``prices`` added (replacing same model and date)."""
        return PriceTable([*self, *prices])

    def __iter__(self) -> Iterator[Price]:
        for entries in self._by_model.values():
            yield from entries

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._by_model.values())

    def __repr__(self) -> str:
        return f"PriceTable({len(self)} prices, {len(self._by_model)} models)"

    @property
    def prices(self) -> tuple[Price, ...]:
        """Every price, by model then effective date."""
        return tuple(self)

    def effective_dates(self) -> tuple[date, ...]:
        """Every distinct ``effective_from``, ascending: between two consecutive dates
        the price of every model is constant (what the usage queries group by)."""
        return tuple(sorted({price.effective_from for price in self}))

    def price_for(self, model: str, at: datetime | date) -> Price | None:
        """The price of ``model`` in force at ``at`` (a naive datetime is UTC).

        The entries for the model id itself are searched first, then those of ever
        shorter prefixes of it ending at a ``-`` boundary (``claude-sonnet-4-5`` for
        ``claude-sonnet-4-5-20250929``, never ``claude-opus-4-1`` for
        ``claude-opus-4-10``); the first of these with an entry in force (the latest
        ``effective_from`` on or before the UTC day of ``at``) gives the price.
        ``None`` when no entry applies: the cost is then unknown, never 0.
        """
        day = _day(at)
        for key in self._keys_for(model):
            entries = self._by_model[key]
            index = bisect.bisect_right([price.effective_from for price in entries], day)
            if index:
                return entries[index - 1]
        return None

    def _keys_for(self, model: str) -> tuple[str, ...]:
        found = self._candidates.get(model)
        if found is None:
            prefixes = sorted(
                (key for key in self._by_model if model.startswith(key + "-")),
                key=len,
                reverse=True,
            )
            found = ((model,) if model in self._by_model else ()) + tuple(prefixes)
            self._candidates[model] = found
        return found
