"""Managing stored conversations with ``Store``: create, list, fork, export/import, delete.

Run: ``python examples/conversation_management.py [DATABASE_URL]`` (default: an SQLite
file in a temporary directory; ``postgresql+psycopg://...`` works the same). Offline
against FakeClaude (which answers ``Echo: <your text>``) unless ``ANTHROPIC_API_KEY``
is set.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from _offline import MODEL, connect, database

from clust import Store
from clust.messages import ConversationNotFound
from clust.usage import usage_report


def main() -> None:
    with connect() as (client, _fake), database() as url, Store(url) as store:
        # Create: each conversation keeps its defaults, a title and your metadata.
        trip = store.create_conversation(
            model=MODEL, max_tokens=300, metadata={"user": "u-1"}, title="Trip to Lisbon"
        )
        taxes = store.create_conversation(
            model=MODEL, max_tokens=300, metadata={"user": "u-2"}, title="Tax questions"
        )
        recipes = store.create_conversation(
            model=MODEL, max_tokens=300, metadata={"user": "u-1"}, title="Recipe ideas"
        )
        trip.send(client, "Suggest three sights in Lisbon.")
        trip.send(client, "Which one is best at sunset?")
        taxes.send(client, "When is the filing deadline?")
        recipes.send(client, "A quick dinner with lentils?")
        print(f"created 3 conversations in {url}")

        # List: newest first, filtered on metadata, paginated with `after`.
        mine = store.list_conversations(metadata={"user": "u-1"})
        print(f"user u-1 has {len(mine)}: {[conv.title for conv in mine]}")
        first_page = store.list_conversations(limit=2)
        rest = store.list_conversations(limit=2, after=first_page[-1].id)
        print(f"pages of 2: {[c.title for c in first_page]} then {[c.title for c in rest]}")

        # Fork: a new conversation with the turns before a position (edit-and-retry).
        # Positions 0/1 are the first question and its answer; fork before the second.
        fork = store.fork(trip, 2)
        print(
            f"forked {trip.id[:8]} at position 2 -> {fork.id[:8]} (parent_id "
            f"{str(fork.parent_id)[:8]}): it keeps {len(fork.history)} of {len(trip.history)} turns"
        )
        fork.send(client, "Which one is best in the morning?")
        print(f"fork's turns now: {[turn.text()[:40] for turn in fork.history]}")

        # Export / import: one conversation as a JSON document (turns, defaults, usage).
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "trip.json"
            path.write_text(json.dumps(store.export_conversation(trip), indent=1))
            document = json.loads(path.read_text())
            copy = store.import_conversation(document)  # a new id unless keep_id=True
        print(
            f"exported {len(document['messages'])} messages and {len(document['usage'])} "
            f"usage rows; imported as {copy.id[:8]} with {len(copy.history)} turns, "
            f"same history: {copy.history == trip.history}"
        )

        # Delete: the turns go, the usage rows stay (detached) for accounting.
        store.delete_conversation(taxes.id)
        try:
            store.get_conversation(taxes.id)
        except ConversationNotFound:
            print(
                f"deleted {taxes.id[:8]} ('Tax questions'): "
                "get_conversation raises ConversationNotFound"
            )
        by_conversation = usage_report(store, by="conversation")
        detached = sum(row.requests for row in by_conversation if row.key is None)
        total = sum(row.requests for row in by_conversation)
        print(
            f"usage rows: {total} in all (the import copied {len(document['usage'])}), "
            f"{detached} detached"
        )
        left = [f"{conv.id[:8]} {conv.title}" for conv in store.list_conversations()]
        print(f"conversations left: {left}")


if __name__ == "__main__":
    main()
