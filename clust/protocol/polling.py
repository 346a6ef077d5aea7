"""When to poll a Message Batch again while waiting for it to end (sans-IO).

The wait between polls starts at ``poll_interval`` and doubles after every poll, up
to ``max_interval``; the last wait is shortened so that the final poll happens at the
deadline, and a batch still running after it raises :class:`BatchWaitTimeout`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clust.messages.errors import BatchWaitTimeout, InvalidParameter

if TYPE_CHECKING:
    from clust.messages.batches import MessageBatch

__all__ = ["BatchPoller"]


def _seconds(field: str, value: object, *, optional: bool = False) -> float:
    if optional and value is None:
        return float("inf")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        allowed = "a number of seconds > 0" + (" or None" if optional else "")
        raise InvalidParameter(field, value, allowed)
    return float(value)


class BatchPoller:
    """The waits of one ``wait_for_message_batch`` call.

    Args:
        batch_id: the batch waited for (named in the timeout error).
        poll_interval: the first wait, in seconds.
        max_interval: the longest wait.
        timeout: give up after this many seconds (None: never).
        start: the clock's reading when the wait began.

    Raises:
        InvalidParameter: a non-positive interval or timeout, or ``max_interval``
            below ``poll_interval``.
    """

    def __init__(
        self,
        batch_id: str,
        *,
        poll_interval: float,
        max_interval: float,
        timeout: float | None,
        start: float,
    ) -> None:
        self._interval = _seconds("poll_interval", poll_interval)
        self._max = _seconds("max_interval", max_interval)
        if self._max < self._interval:
            raise InvalidParameter(
                "max_interval", max_interval, f"a number >= poll_interval ({poll_interval:g})"
            )
        self._timeout = timeout
        self._deadline = start + _seconds("timeout", timeout, optional=True)
        self.batch_id = batch_id
        self.polls = 0
        """Polls observed so far."""

    def next_delay(self, batch: MessageBatch, now: float) -> float | None:
        """After a poll that returned ``batch`` at time ``now``: None when the batch has
        ended, else how long to sleep before the next poll.

        Raises:
            BatchWaitTimeout: the batch is still running and the deadline has passed.
        """
        self.polls += 1
        if batch.ended:
            return None
        remaining = self._deadline - now
        if remaining <= 0:
            assert self._timeout is not None
            raise BatchWaitTimeout(self.batch_id, self._timeout, batch)
        delay = min(self._interval, remaining)
        self._interval = min(self._interval * 2, self._max)
        return delay
