"""Automatic prompt-cache breakpoints for conversations, placed when a request is assembled.

A :class:`CachePolicy` adds up to two ``cache_control`` markers to the request it is
given, never to the stored history:

- the *stable* breakpoint (``system_ttl``) on the last block of tools + system: the last
  system block when there is a system prompt, else the last tool definition;
- the *moving* breakpoint (``history_ttl``) on the last block of the newest turn, so the
  request of turn N+1 reads the prefix that turn N wrote.

Rules, in this order (the API's, ../shared/api/content-blocks.md):

1. The user's own markers always win and are counted: those on tools and system blocks,
   in every turn (nested in ``tool_result`` content too), and a top-level
   ``cache_control`` (counted as one; it already places a moving breakpoint, so the
   policy's moving one is not added). At most 4 in all: when only one slot is left the
   moving breakpoint is kept and the stable one dropped (the moving prefix contains the
   stable one); with none left no automatic marker is added.
2. A block that already carries a user marker is a breakpoint already: nothing is added.
3. Blocks that cannot carry a marker are skipped: ``thinking``/``redacted_thinking`` and
   empty text blocks (the moving breakpoint goes on the newest turn's last block that can
   carry one; when there is none it is not placed). String content (``system`` or the
   newest turn) becomes a single text block in the request to carry a marker.
4. 1h entries must precede 5m ones in prompt order: an automatic marker with a 1h marker
   after it is upgraded to 1h (the tokens up to that later 1h marker are written at the
   1h rate anyway, so this costs nothing more); one with a 5m marker before it is
   downgraded to 5m; one that would need both is dropped. The moving breakpoint is
   settled first, then the stable one against it.
5. A breakpoint whose prefix is estimated (JSON bytes / 4) below the model's minimum
   cacheable length (:func:`clust.messages.claude_models.model_limits`, else 1024) is
   not placed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from clust.messages.claude_models import model_limits
from clust.messages.errors import InvalidParameter
from clust.protocol.markers import cache_ttls, marker_ttl

__all__ = ["DEFAULT_MIN_CACHEABLE_TOKENS", "CachePolicy", "Placement"]

DEFAULT_MIN_CACHEABLE_TOKENS = 1024
MAX_BREAKPOINTS = 4
_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})

Ttl = Literal["5m", "1h"]
# A place in prompt order: (section, index, block) with section 0 tools, 1 system, 2 messages.
_Position = tuple[int, int, int]
_TOP_LEVEL: _Position = (3, 0, 0)


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _can_carry(block: object) -> bool:
    if not isinstance(block, Mapping):
        return False
    kind = block.get("type")
    if kind in _UNCACHEABLE:
        return False
    return not (kind == "text" and not block.get("text"))


def _has_marker(block: Mapping[str, Any]) -> bool:
    return isinstance(block.get("cache_control"), Mapping)


@dataclass(frozen=True)
class Placement:
    """What to send: the head JSON, the newest turn's JSON, and whether a 1h marker is in."""

    head: bytes
    last: bytes
    one_hour: bool


@dataclass
class _Candidate:
    position: _Position
    ttl: str


@dataclass(frozen=True)
class CachePolicy:
    """Where a conversation puts automatic cache breakpoints (see the module docstring).

    Attributes:
        system_ttl: TTL of the breakpoint on the last tools/system block, or ``None``.
        history_ttl: TTL of the moving breakpoint on the newest turn, or ``None``.
        explain_misses: send ``diagnostics.previous_message_id`` (the previous reply's
            id) so the API says why a turn missed the cache; the reason is kept in
            the turn's usage row.

    ``CachePolicy.off()`` (or ``conversation.cache = None``) places nothing and asks
    for no diagnostics.
    """

    system_ttl: Ttl | None = "5m"
    history_ttl: Ttl | None = "5m"
    explain_misses: bool = True

    def __post_init__(self) -> None:
        for name in ("system_ttl", "history_ttl"):
            value = getattr(self, name)
            if value not in (None, "5m", "1h"):
                raise InvalidParameter(name, value, "'5m', '1h' or None")

    @classmethod
    def off(cls) -> CachePolicy:
        """A policy that places no marker."""
        return cls(system_ttl=None, history_ttl=None, explain_misses=False)

    @property
    def enabled(self) -> bool:
        """Whether this policy may place any marker."""
        return self.system_ttl is not None or self.history_ttl is not None

    def place(
        self,
        head: Mapping[str, Any],
        head_json: bytes,
        wires: Sequence[bytes],
        earlier_markers: Sequence[tuple[str, ...]],
    ) -> Placement | None:
        """Markers for a request of ``head`` (parsed) and the turns ``wires``.

        ``earlier_markers`` are the user markers' TTLs of each turn but the newest (only
        the head and the newest turn are parsed here). ``None``: nothing to add, send the
        stored bytes as they are.
        """
        if not self.enabled or not wires:
            return None
        last: dict[str, Any] = json.loads(wires[-1])
        newest = len(wires) - 1
        user: list[tuple[_Position, str]] = []
        raw_tools = head.get("tools")
        tools: list[Any] = raw_tools if isinstance(raw_tools, list) else []
        system = head.get("system")
        system_blocks: list[Any] = (
            [{"type": "text", "text": system}] if isinstance(system, str) else system or []
        )
        for i, tool in enumerate(tools):
            user += [((0, i, 0), ttl) for ttl in cache_ttls(tool)]
        for i, block in enumerate(system_blocks):
            user += [((1, i, 0), ttl) for ttl in cache_ttls(block)]
        if any(earlier_markers[:newest]):  # long histories rarely hold markers of their own
            for m, ttls in enumerate(earlier_markers[:newest]):
                user += [((2, m, 0), ttl) for ttl in ttls]
        content = last.get("content")
        blocks: list[Any] = (
            [{"type": "text", "text": content}]
            if isinstance(content, str)
            else (content if isinstance(content, list) else [])
        )
        for b, block in enumerate(blocks):
            user += [((2, newest, b), ttl) for ttl in cache_ttls(block)]
        top = head.get("cache_control")
        if isinstance(top, Mapping):
            user.append((_TOP_LEVEL, marker_ttl(top)))
        slots = MAX_BREAKPOINTS - len(user)
        if slots <= 0:
            return None

        minimum = _minimum(str(head.get("model", "")))
        stable_size = len(_dumps(tools)) + len(_dumps(system_blocks)) if tools or system else 0
        moving: _Candidate | None = None
        if self.history_ttl is not None and not isinstance(top, Mapping):
            at = next((i for i in range(len(blocks) - 1, -1, -1) if _can_carry(blocks[i])), None)
            size = stable_size + sum(map(len, wires))
            if at is not None and not _has_marker(blocks[at]) and size // 4 >= minimum:
                moving = _Candidate((2, newest, at), self.history_ttl)
        stable: _Candidate | None = None
        if self.system_ttl is not None and stable_size // 4 >= minimum:
            if system_blocks:
                where: _Position | None = (1, len(system_blocks) - 1, 0)
                block = system_blocks[-1]
            elif tools:
                where, block = (0, len(tools) - 1, 0), tools[-1]
            else:
                where = None
            if where is not None and isinstance(block, Mapping):
                carries = where[0] == 0 or _can_carry(block)
                if carries and not _has_marker(block):
                    stable = _Candidate(where, self.system_ttl)
        moving = _settle(moving, user)
        if moving is not None:
            if slots == 1:
                stable = None
            user.append((moving.position, moving.ttl))
        stable = _settle(stable, user)
        if moving is None and stable is None:
            return None

        new_head = head
        if stable is not None:
            new_head = dict(head)
            marker = {"type": "ephemeral", "ttl": stable.ttl}
            if stable.position[0] == 1:
                new_head["system"] = [
                    *system_blocks[:-1],
                    {**system_blocks[-1], "cache_control": marker},
                ]
            else:
                new_head["tools"] = [*tools[:-1], {**tools[-1], "cache_control": marker}]
        new_last = last
        if moving is not None:
            b = moving.position[2]
            marked = {**blocks[b], "cache_control": {"type": "ephemeral", "ttl": moving.ttl}}
            new_last = {**last, "content": [*blocks[:b], marked, *blocks[b + 1 :]]}
        one_hour = any(c is not None and c.ttl == "1h" for c in (stable, moving))
        return Placement(
            head=head_json if new_head is head else _dumps(new_head),
            last=wires[-1] if new_last is last else _dumps(new_last),
            one_hour=one_hour,
        )


def _settle(
    candidate: _Candidate | None, markers: list[tuple[_Position, str]]
) -> _Candidate | None:
    """``candidate`` with the TTL the 1h-before-5m rule allows, or ``None`` (rule 4)."""
    if candidate is None:
        return None
    later_1h = any(p > candidate.position and t == "1h" for p, t in markers)
    # A marker nested in the same block (tool_result content) comes before its own.
    earlier_5m = any(p <= candidate.position and t == "5m" for p, t in markers)
    if later_1h and earlier_5m:
        return None
    if later_1h:
        return _Candidate(candidate.position, "1h")
    if earlier_5m:
        return _Candidate(candidate.position, "5m")
    return candidate


def _minimum(model: str) -> int:
    limits = model_limits(model)
    if limits is None or limits.min_cacheable_tokens is None:
        return DEFAULT_MIN_CACHEABLE_TOKENS
    return limits.min_cacheable_tokens
