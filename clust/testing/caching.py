"""Prompt-cache simulation: remembered prefixes with TTLs, and the usage split they produce.

The rule, per request (prefixes run in prompt order, tools -> system -> messages):

1. Every breakpoint (``cache_control`` marker, or the one top-level ``cache_control`` adds on the
   last cacheable block) names a prefix: everything up to and including its block.
2. Read: the longest prefix that an earlier request cached, still unexpired, ending at a block
   boundary no more than 20 blocks before one of this request's breakpoints (the documented
   lookback). Reading refreshes its TTL. Its tokens are ``cache_read_input_tokens``.
3. Write: breakpoints whose prefix is at least the model's minimum cacheable length are
   *eligible*; those after the read prefix are written. Tokens after the read prefix up to the
   last written 1h breakpoint count as ``ephemeral_1h_input_tokens``; from there up to the last
   written breakpoint as ``ephemeral_5m_input_tokens``. Their sum is
   ``cache_creation_input_tokens``. Shorter breakpoints cache nothing (and raise no error).
4. The rest is ``input_tokens``.

Identity of a prefix = the model plus the canonical JSON of its blocks without ``cache_control``
(so moving a marker does not change what is cached). Time comes from a :class:`FakeClock`.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import FakeClock
from .prompt import Breakpoint, Segment, count_input_tokens

__all__ = ["CacheResult", "DiagnosticsMemory", "Fingerprint", "PromptCache"]

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
LOOKBACK_BLOCKS = 20


@dataclass(frozen=True)
class CacheResult:
    """How one request's input tokens split between fresh, cache-read and cache-written."""

    input_tokens: int
    cache_read_input_tokens: int
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int
    cached_prefix_tokens: int
    """Tokens through the longest prefix cached after this request (for diagnostics)."""

    @property
    def cache_creation_input_tokens(self) -> int:
        """Tokens written to the cache, both TTLs."""
        return self.ephemeral_5m_input_tokens + self.ephemeral_1h_input_tokens


@dataclass
class _Entry:
    expires_at: float
    ttl: float


class PromptCache:
    """Cached prefixes keyed by identity, each with an expiry on the fake clock."""

    def __init__(self, clock: FakeClock, min_tokens: Callable[[str], int]) -> None:
        self._clock = clock
        self._min_tokens = min_tokens
        self._entries: dict[bytes, _Entry] = {}
        self._lock = threading.Lock()
        self._calls = 0

    def process(self, model: str, segments: list[Segment], points: list[Breakpoint]) -> CacheResult:
        """Account one request against the cache (reading and writing entries)."""
        total = count_input_tokens(segments)
        if not points:
            return CacheResult(total, 0, 0, 0, 0)
        last = max(p.index for p in points)
        cum: list[int] = []
        keys: list[bytes] = []
        running = 0
        digest = hashlib.sha256(model.encode("utf-8") + b"\x00")
        for segment in segments[: last + 1]:
            running += segment.tokens
            cum.append(running)
            digest.update(segment.identity.encode("utf-8") + b"\x00")
            keys.append(digest.digest())
        candidates = sorted(
            {i for p in points for i in range(max(0, p.index - LOOKBACK_BLOCKS + 1), p.index + 1)},
            reverse=True,
        )
        minimum = self._min_tokens(model)
        eligible = [p for p in points if cum[p.index] >= minimum]
        with self._lock:
            now = self._clock.now()
            self._maybe_purge(now)
            read_index: int | None = None
            for i in candidates:
                entry = self._entries.get(keys[i])
                if entry is not None and entry.expires_at > now:
                    read_index = i
                    entry.expires_at = now + entry.ttl
                    break
            read = cum[read_index] if read_index is not None else 0
            written = [p for p in eligible if read_index is None or p.index > read_index]
            end = max((cum[p.index] for p in written), default=read)
            end_1h = max((cum[p.index] for p in written if p.ttl == "1h"), default=read)
            one_hour = max(0, end_1h - read)
            five_minutes = max(0, end - read) - one_hour
            for p in eligible:
                ttl = TTL_SECONDS.get(p.ttl, TTL_SECONDS["5m"])
                entry = self._entries.get(keys[p.index])
                if entry is not None and entry.expires_at > now:
                    entry.expires_at = max(entry.expires_at, now + ttl)
                    entry.ttl = max(entry.ttl, ttl)
                else:
                    self._entries[keys[p.index]] = _Entry(now + ttl, ttl)
        cached = max(read, end)
        return CacheResult(
            input_tokens=total - read - one_hour - five_minutes,
            cache_read_input_tokens=read,
            ephemeral_5m_input_tokens=five_minutes,
            ephemeral_1h_input_tokens=one_hour,
            cached_prefix_tokens=cached,
        )

    def clear(self) -> None:
        """Forget every cached prefix."""
        with self._lock:
            self._entries.clear()

    def live_entries(self) -> int:
        """How many prefixes are cached and unexpired right now."""
        with self._lock:
            now = self._clock.now()
            return sum(1 for e in self._entries.values() if e.expires_at > now)

    def _maybe_purge(self, now: float) -> None:
        self._calls += 1
        if self._calls % 256 == 0:
            self._entries = {k: e for k, e in self._entries.items() if e.expires_at > now}


@dataclass(frozen=True)
class Fingerprint:
    """What a request looked like, for ``diagnostics.cache_miss_reason`` on a later request."""

    model: str
    tools: str
    system: str
    messages: tuple[str, ...]
    cached_prefix_tokens: int

    @classmethod
    def of(cls, model: str, segments: list[Segment], cached_prefix_tokens: int) -> Fingerprint:
        """Fingerprint a request from its prompt segments."""
        tools: list[str] = []
        system: list[str] = []
        messages: dict[int, list[str]] = {}
        for s in segments:
            if s.section == "tools":
                tools.append(s.identity)
            elif s.section == "system":
                system.append(s.identity)
            elif s.message_index is not None:
                messages.setdefault(s.message_index, []).append(s.identity)
        return cls(
            model=model,
            tools=_hash(tools),
            system=_hash(system),
            messages=tuple(_hash(messages[k]) for k in sorted(messages)),
            cached_prefix_tokens=cached_prefix_tokens,
        )


class DiagnosticsMemory:
    """Fingerprints of recent responses by message id (bounded)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, Fingerprint] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, message_id: str, fingerprint: Fingerprint) -> None:
        """Keep the fingerprint of the request that produced ``message_id``."""
        with self._lock:
            self._items[message_id] = fingerprint
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)

    def explain(
        self, previous_message_id: Any, current: Fingerprint, cache_read_tokens: int
    ) -> dict[str, Any]:
        """The response's ``diagnostics`` object: ``{"cache_miss_reason": None | {...}}``.

        ``None`` when nothing changed since the previous request (or no id was given);
        ``previous_message_not_found`` for an unknown id; else the first difference among
        model, tools, system and messages (messages may only have been appended to), with
        ``cache_missed_input_tokens`` = what the previous request cached minus what this one
        read.
        """
        if previous_message_id is None:
            return {"cache_miss_reason": None}
        with self._lock:
            previous = (
                self._items.get(previous_message_id)
                if isinstance(previous_message_id, str)
                else None
            )
        if previous is None:
            return {"cache_miss_reason": {"type": "previous_message_not_found"}}
        missed = max(0, previous.cached_prefix_tokens - cache_read_tokens)
        reason: str | None = None
        if previous.model != current.model:
            reason = "model_changed"
        elif previous.tools != current.tools:
            reason = "tools_changed"
        elif previous.system != current.system:
            reason = "system_changed"
        elif current.messages[: len(previous.messages)] != previous.messages:
            reason = "messages_changed"
        if reason is None:
            return {"cache_miss_reason": None}
        return {"cache_miss_reason": {"type": reason, "cache_missed_input_tokens": missed}}


def _hash(parts: list[str]) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()
