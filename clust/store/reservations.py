"""Reservations of a conversation's next turn, so that waits across processes are served
in order.

A sender that waits for a busy conversation (``wait=``, :mod:`clust.conversation.waiting`)
reserves the next turn for its process: ``lease_next`` (the process's holder prefix,
``host:pid:``) until ``lease_next_until``. While the reservation is live, a free lease
goes only to that process (the claims of :mod:`clust.store.lease_rows` check it), and
it goes over to another process's sender only if that one began to wait earlier
(``lease_next_since``) or the reservation ran out (its process stopped renewing it).
On PostgreSQL its expiry comes from the database server's clock, like the lease's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from clust.store.lease_rows import this_process
from clust.store.sql import Sql, db_time

__all__ = ["reserve_next", "unreserve"]


_RESERVE = (
    Sql(
        """UPDATE clust_conversations SET lease_next = :me, lease_next_since = :since,
            lease_next_until = :until
        WHERE id = :id AND (lease_next IS NULL OR lease_next = :me
            OR lease_next_until <= :now OR lease_next_since > :since)"""
    ),
    Sql(
        """UPDATE clust_conversations SET lease_next = :me, lease_next_since = :since,
            lease_next_until = clock_timestamp() + :hold
        WHERE id = :id AND (lease_next IS NULL OR lease_next = :me
            OR lease_next_until <= clock_timestamp() OR lease_next_since > :since)"""
    ),
)
_UNRESERVE = Sql(
    "UPDATE clust_conversations SET lease_next = NULL WHERE id = :id AND lease_next = :me"
)


def reserve_next(
    connection: Connection, conversation_id: str, since: datetime, now: datetime, hold: timedelta
) -> bool:
    """Reserve the conversation's next turn for this process, for ``hold`` (by the
    server's clock on PostgreSQL), on behalf of a sender waiting ``since`` then:
    taken from another process only when its reservation ran out or its sender
    began to wait later. Whether this process holds the reservation now. While it
    does, a free lease goes to no other process; the first in this process's line
    renews it while it waits (:mod:`clust.conversation.waiting`)."""
    postgres = connection.dialect.name == "postgresql"
    params: dict[str, Any] = {"id": conversation_id, "me": this_process()}
    if postgres:
        params.update(since=since, hold=hold)
    else:
        params.update(
            since=db_time(connection, since),
            now=db_time(connection, now),
            until=db_time(connection, now + hold),
        )
    return _RESERVE[postgres].count(connection, params) > 0


def unreserve(connection: Connection, conversation_id: str) -> bool:
    """Give back this process's reservation of the next turn (nobody here waits any
    more); whether it held one."""
    return _UNRESERVE.count(connection, {"id": conversation_id, "me": this_process()}) > 0
