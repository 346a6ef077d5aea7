"""A tool loop that survives being stopped: ``@tool`` functions and ``conv.run``, offline.

Run: ``python examples/tool_loop.py [DATABASE_URL]`` (default: an SQLite file in a new
temporary directory). No API key and no network: the bundled FakeClaude plays the
model from scripted replies. Point the same code at the real API with
``Client.from_env()``.

What it shows:

1. ``@tool`` turns typed functions into tools (the JSON Schema comes from the
   signature and the docstring; Claude's input is validated before the call).
2. ``conv.run(client, question, tools=[...])`` sends the question, runs every tool
   Claude asks for, sends the results back, and repeats until Claude is done;
   ``on_step`` prints each step as it happens.
3. The first run is cut short (``max_steps=2``, as if the process had stopped). A
   second ``run`` with no question, on a freshly opened store as another process
   would do, picks up where it stopped: results already stored are reused, not run
   again, and the loop goes on to the end.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated

from pydantic import Field

from clust import Client, Store
from clust.conversation.loop import Step
from clust.testing import FakeClaude, Reply
from clust.tools import tool

QUESTION = "Plan my evening in Paris: check the weather, then book a table for two at 8 pm."
RAN: Counter[str] = Counter()  # how many times each tool really ran


@tool(idempotent=True, timeout=5)
def get_weather(city: Annotated[str, Field(description="City name, e.g. Paris")]) -> str:
    """Tonight's weather for a city."""
    RAN["get_weather"] += 1
    return f"18 C and dry in {city} tonight"


@tool(idempotent=True)
def find_tables(city: str, people: int, time: str) -> list[str]:
    """Restaurants in a city with a free table.

    Args:
        city: The city.
        people: How many guests.
        time: The time, as HH:MM.
    """
    RAN["find_tables"] += 1
    return ["Chez Janou", "Le Petit Vendome"]


@tool  # not idempotent: booking twice would book two tables
def book_table(
    restaurant: str,
    time: str,
    people: Annotated[int, Field(ge=1, le=12, description="Number of guests, 1 to 12")],
) -> str:
    """Book a table."""
    RAN["book_table"] += 1
    return f"Booked {restaurant} at {time} for {people} (confirmation PX-4821)"


TOOLS = [get_weather, find_tables, book_table]


def show_step(step: Step) -> None:
    """The ``on_step`` hook: one line for what Claude said, one per tool call."""
    if step.response is None:
        print(f"  step {step.index}: tool calls left from the earlier run")
    else:
        said = step.response.text().strip() or "(no text)"
        print(f"  step {step.index}: Claude: {said}  [stop_reason={step.response.stop_reason}]")
    for call in step.tool_calls:
        arguments = ", ".join(f"{key}={value!r}" for key, value in dict(call.input).items())
        if call.reused:
            how = "reused the stored result of"
        elif call.is_error:
            how = "ERROR result for"
        else:
            how = "ran"
        print(f"      {how} {call.name}({arguments}) -> {call.content}")


def script(fake: FakeClaude) -> None:
    """What the fake model answers, in order (a real model decides this itself)."""
    fake.enqueue(
        Reply.tool_use("get_weather", {"city": "Paris"}, text="Let me check the weather."),
        Reply.tool_use(
            "find_tables",
            {"city": "Paris", "people": 2, "time": "20:00"},
            text="Dry tonight. Looking for a table.",
        ),
        # A mistake the input validation catches: people must be at least 1.
        Reply.tool_use("book_table", {"restaurant": "Chez Janou", "time": "20:00", "people": 0}),
        Reply.tool_use(
            "book_table",
            {"restaurant": "Chez Janou", "time": "20:00", "people": 2},
            text="Oops, two people.",
        ),
        Reply.text("All set: 18 C and dry, and a table for two at Chez Janou at 20:00."),
    )


def main(url: str) -> None:
    with FakeClaude() as fake, Client(api_key="offline", base_url=fake.base_url) as client:
        script(fake)
        print(f"Conversation store: {url}")
        print(f"> {QUESTION}\n")

        print("First run, stopped after 2 requests (max_steps=2), as if the process died:")
        with Store(url) as store:
            conv = store.create_conversation(model="claude-sonnet-5-5", max_tokens=1024)
            first = conv.run(client, QUESTION, tools=TOOLS, max_steps=2, on_step=show_step)
        print(f"  -> stopped: {first.stop}; the results of step 1 are stored, not yet sent\n")

        print("Later, in a new process: open the store and call run() with no question:")
        with Store(url) as store:
            resumed = store.get_conversation(conv.id)
            result = resumed.run(client, tools=TOOLS, on_step=show_step)
            usage = resumed.usage()
            turns = len(resumed.history)
        print(f"  -> finished: {result.stop}\n")

        print(f"Final answer: {result.text}")
        ran = ", ".join(f"{name} x{count}" for name, count in sorted(RAN.items()))
        print(f"Tools that really ran: {ran} (nothing ran twice)")
        print(
            f"Stored: {turns} turns, {usage.requests} replies, "
            f"{usage.input_tokens} input + {usage.output_tokens} output tokens"
        )
        print(
            "Had the process died inside book_table, the next run() would not book again\n"
            "(book_table is not idempotent): Claude would get an error result saying the\n"
            "call was interrupted. An idempotent tool such as get_weather would run again."
        )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as directory:
            main(f"sqlite:///{Path(directory) / 'clust_tools_demo.db'}")
