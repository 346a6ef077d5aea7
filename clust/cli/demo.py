"""``clust demo``: clust end to end in a few seconds, offline.

A local FakeClaude server stands in for the API. The demo starts a stored
conversation whose system prompt carries a long reference block cached for one
hour, answers a question through a tool call (a ``@tool`` function run by
``conv.run``), reopens the database and resumes the conversation by id with a
streamed reply, then prints what the requests cost and what the prompt cache saved.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clust.cli.common import open_store, shown_url
from clust.cli.usage import amount, usage_table

if TYPE_CHECKING:
    from clust.messages.response import MessagesResponseBody
    from clust.tools import Tool
    from clust.usage import Price

__all__ = ["DEMO_MODEL", "add_parser", "demo_price"]

DEMO_MODEL = "claude-sonnet-5-5"
LATER_SECONDS = 600  # how far FakeClaude's clock moves between the two sessions

_CITIES = [
    "Amsterdam",
    "Athens",
    "Auckland",
    "Bangkok",
    "Barcelona",
    "Berlin",
    "Bogota",
    "Boston",
    "Brussels",
    "Buenos-Aires",
    "Cairo",
    "Cape-Town",
    "Chicago",
    "Copenhagen",
    "Delhi",
    "Dubai",
    "Dublin",
    "Edinburgh",
    "Helsinki",
    "Hong-Kong",
    "Istanbul",
    "Jakarta",
    "Lagos",
    "Lima",
    "Lisbon",
    "London",
    "Madrid",
    "Melbourne",
    "Mexico-City",
    "Montreal",
    "Mumbai",
    "Nairobi",
    "Oslo",
    "Paris",
    "Prague",
    "Reykjavik",
    "Rome",
    "Santiago",
    "Seoul",
    "Singapore",
    "Stockholm",
    "Sydney",
    "Tokyo",
    "Toronto",
    "Vienna",
    "Warsaw",
    "Zurich",
]


def reference_text() -> str:
    """The long system block: invented station notes, long enough (about 1,500 tokens
    as FakeClaude counts) to pass the model's minimum cacheable prefix of 1,024."""
    lines = ["Weather service reference (demo data, invented for this demo):"]
    for index, city in enumerate(_CITIES):
        name = city.replace("-", " ")
        lines.append(
            f"- {name}: station {index + 101}, reports every 30 minutes; quote temperatures "
            f"in Celsius, wind in km/h, and say when the data is older than one hour."
        )
    return "\n".join(lines)


def demo_price() -> Price:
    """The demo model's made-up price, USD per million tokens (input 3, output 15)."""
    from clust.usage import Price

    return Price(DEMO_MODEL, date(2025, 1, 1), "3", "15")


def add_parser(commands: Any) -> None:
    """Register ``clust demo``."""
    parser = commands.add_parser(
        "demo",
        help="a stored chat with caching and a tool call, offline, in seconds",
        description="A stored chat with prompt caching, a tool call and a resume, offline.",
    )
    parser.add_argument(
        "--db", metavar="URL", help="database URL (default: an SQLite file in a new temp dir)"
    )
    parser.set_defaults(run=run)


def _weather_tool() -> Tool[Any, str]:
    from clust.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city.

        Args:
            city: The city name, e.g. "Paris".
        """
        return f"14 C and light rain in {city}"

    return get_weather


def _usage_line(reply: MessagesResponseBody) -> str:
    usage = reply.usage
    split = usage.cache_creation
    one_hour = split.ephemeral_1h_input_tokens if split is not None else 0
    written = usage.cache_creation_input_tokens or 0
    ttl = " (1h TTL)" if written and one_hour == written else ""
    return (
        f"           [usage: cache write {written:,}{ttl}, cache read "
        f"{usage.cache_read_input_tokens or 0:,}, uncached input {usage.input_tokens:,}, "
        f"output {usage.output_tokens:,} tokens]"
    )


def run(args: argparse.Namespace) -> int:
    from clust.client import Client
    from clust.messages import CacheControl, CacheTtl, SystemPrompt
    from clust.testing import FakeClaude, Reply
    from clust.usage import PriceTable, usage_report

    workdir = Path(tempfile.mkdtemp(prefix="clust-demo-"))
    url = args.db or f"sqlite:///{(workdir / 'demo.db').as_posix()}"
    weather = _weather_tool()
    say = print

    say("clust demo: runs offline. FakeClaude, a local server that speaks the Claude API,")
    say("stands in for it: no API key, no network, scripted replies, real token accounting.")
    say(f"database: {shown_url(url)}\n")

    with FakeClaude() as fake, Client(api_key="offline-demo", base_url=fake.base_url) as client:
        fake.enqueue(
            Reply.tool_use("get_weather", {"city": "Paris"}, text="Let me check."),
            Reply.text("It is 14 C with light rain in Paris: take an umbrella."),
            Reply.text("Tomorrow looks drier, 17 C and sunny by noon: leave the umbrella."),
        )

        # -- step 1: a new stored conversation, a tool call run by conv.run -------------
        with open_store(url) as store:
            conv = store.create_conversation(
                model=DEMO_MODEL,
                max_tokens=1024,
                system=SystemPrompt.from_text_blocks_with_cache_control(
                    [
                        ("You are a terse weather assistant.", None),
                        (reference_text(), CacheControl(ttl=CacheTtl.ONE_HOUR)),
                    ]
                ),
                tools=[weather.definition],
                metadata={"user": "demo-user"},
                title="Paris weather (clust demo)",
            )
            conv.cache = None  # the demo shows its hand-placed marker alone
            say(f"Step 1: a new conversation, id {conv.id}")
            say("  Its system prompt ends with a long reference block marked for the prompt")
            say("  cache with a 1-hour TTL; Claude may call one tool, get_weather, which")
            say("  conv.run() executes here. Every turn and its usage is stored as it happens.\n")
            question = "What's the weather in Paris?"
            say(f"  you    > {question}")

            def on_step(step: Any) -> None:
                if step.response is not None:
                    say(f"  claude > {step.response.text()}")
                    say(_usage_line(step.response))
                for call in step.tool_calls:
                    say(
                        f"  tool     {call.name}({json.dumps(call.input)}) returned "
                        f"{call.content!r}, sent back to Claude"
                    )

            conv.run(client, question, tools=[weather], on_step=on_step)
            say(f"\n  stored: {len(conv.history)} turns. The store is closed now.\n")

        # -- step 2: later, another Store on the same database resumes by id ------------
        fake.advance_time(LATER_SECONDS)
        say(f"Step 2: {LATER_SECONDS // 60} minutes later (on FakeClaude's clock), as another")
        say("  process would: open the database again and resume the conversation by its id.")
        with open_store(url) as store:
            resumed = store.get_conversation(conv.id)
            resumed.cache = None
            say(f"  resumed {resumed.id}: {len(resumed.history)} stored turns, sent again")
            say("  with the next message. A 5-minute cache entry would have expired by now;")
            say("  the 1-hour one is still alive, so the reference block is read from the cache")
            say("  (billed at 0.1x input) instead of being processed again.\n")
            follow_up = "And tomorrow?"
            say(f"  you    > {follow_up}")
            sys.stdout.write("  claude > ")
            with resumed.stream(client, follow_up) as stream:
                for text in stream.text_stream:  # printed as it streams in
                    sys.stdout.write(text)
                    sys.stdout.flush()
                reply = stream.get_final_message()
            say("\n" + _usage_line(reply))
            say(f"\n  stored: {len(resumed.history)} turns in all.\n")

            # -- the bill ------------------------------------------------------------------
            prices = PriceTable.default().with_prices(demo_price())
            rows = usage_report(store, by="model", conversation_id=conv.id, prices=prices)
            [total] = usage_report(store, conversation_id=conv.id, prices=prices)

    price = demo_price()
    price_file = workdir / "demo-prices.json"
    price_file.write_text(json.dumps({"prices": [price.as_mapping()]}, indent=2) + "\n")
    say("Usage of this conversation by model (clust.usage.usage_report, summed in SQL).")
    say(f"DEMO PRICES: {DEMO_MODEL} has no published price, so this demo makes one up:")
    say(
        f"  ${price.input} input / ${price.output} output per million tokens; cache writes "
        f"${price.cache_write_5m} (5m) / ${price.cache_write_1h} (1h), reads ${price.cache_read}.\n"
    )
    say(usage_table("model", rows, total))
    if total.cost is not None and total.cache_savings is not None:
        without = total.cost + total.cache_savings
        say(
            f"\nCache savings: ${amount(total.cache_savings)}. Without the prompt cache these "
            f"{total.requests} requests would have cost ${amount(without)}; they cost "
            f"${amount(total.cost)}."
        )
        say(
            "The first request paid 2x input for the 1-hour cache write; the later ones read "
            "the block at 0.1x."
        )
    db_option = f"--db '{shown_url(url)}'"
    say("\nLook around (the database is kept):")
    say(f"  clust conversations show {conv.id} {db_option}")
    say(f"  clust usage --by day --prices {price_file} {db_option}")
    say("A real chat, stored in your data directory: ANTHROPIC_API_KEY=... clust chat")
    return 0
