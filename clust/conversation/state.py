"""What a conversation object holds for the turn engine: its stored defaults, the
history read so far, its settings, and the lock that keeps each step whole."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from clust.conversation.history import History, RequestHead
from clust.conversation.turns import sync_history
from clust.conversation.window import WindowState
from clust.store.engine import reading

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from clust.conversation.caching import CachePolicy
    from clust.conversation.unstored import Unstored
    from clust.conversation.window import TruncationStrategy
    from clust.usage.budget import Spending
    from clust.usage.pricing import PriceTable

__all__ = ["ConversationState"]


@dataclass(eq=False)
class ConversationState:
    """One conversation object's working state (shared by every send it makes).

    ``steps`` is held while a step reads the store and updates ``history``, so that
    threads sharing one conversation object see each step whole.
    """

    engine: Engine
    id: str
    head: RequestHead
    lease: timedelta
    cache: CachePolicy | None
    truncation: TruncationStrategy | None
    spending: Spending | None = None
    prices: PriceTable | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    history: History = field(default_factory=History)
    window: WindowState = field(default_factory=WindowState)
    steps: threading.RLock = field(default_factory=threading.RLock)
    unstored: Unstored | None = None
    """A billed reply a send could not store; the next turn stores it first."""

    def refresh(self) -> None:
        """Read the turns other processes added since this object last looked."""
        with self.steps, reading(self.engine) as connection:
            sync_history(connection, self.id, self.history)

    def load(self) -> None:
        """Read the history once, if it was not read yet."""
        if not self.history.wires:
            self.refresh()

    def head_for(
        self,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> RequestHead:
        """The stored request defaults with this call's overrides (validated)."""
        overrides: dict[str, Any] = dict(params or {})
        for name, value in (
            ("model", model),
            ("max_tokens", max_tokens),
            ("system", system),
            ("tools", tools),
        ):
            if value is not None:
                overrides[name] = value
        return self.head.with_overrides(overrides) if overrides else self.head

    def check_budgets(self, head: RequestHead, wire: bytes | None) -> None:
        """Refuse a request that would pass a budget, before anything is stored or sent
        (a check ahead of time; a turn's :meth:`reserve` is the one that holds)."""
        if self.spending is None:
            return
        self.load()
        history = self.history
        size = len(head.json) + sum(map(len, history.wires)) + len(wire or b"")
        self.spending.check(
            self.engine,
            conversation_id=self.id,
            metadata=self.metadata,
            model=str(head.wire["model"]),
            body_size=size,
            max_tokens=int(head.wire["max_tokens"]),
        )

    def reserve(
        self, head: RequestHead, wire: bytes | None, connection: Connection
    ) -> tuple[int, int] | None:
        """Check the budgets in ``connection``, the turn's write transaction, once the
        history held is current (``wire``: the new user turn, not appended yet), and
        return the reservation its intent row carries (``None``: no budgets).

        Raises:
            BudgetExceeded: the request would pass a budget.
        """
        if self.spending is None:
            return None
        size = len(head.json) + sum(map(len, self.history.wires)) + len(wire or b"")
        return self.spending.reserve(
            connection,
            conversation_id=self.id,
            metadata=self.metadata,
            model=str(head.wire["model"]),
            body_size=size,
            max_tokens=int(head.wire["max_tokens"]),
        )
