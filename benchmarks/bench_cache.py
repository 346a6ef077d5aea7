"""Prompt-cache effectiveness of conversations, on FakeClaude's caching simulation.

Run: ``python -m benchmarks.bench_cache [--turns N] [--model ID] [--long-pause MINUTES]``
(no PostgreSQL, no network: an SQLite store in a temporary directory and a local
FakeClaude).

One run plays the same scripted chat (default 50 turns) through ``Conversation.send``
four times, each in a fresh conversation of one store with FakeClaude's prompt cache
emptied in between:

- (a) the default :class:`~clust.conversation.CachePolicy` (5m breakpoint on the
  system prompt, 5m moving breakpoint on the newest turn);
- (b) caching off (``CachePolicy.off()``): the baseline;
- (c) one hand-placed breakpoint: the user's own ``cache_control`` on the system
  block, automatic policy off;
- (d) the default policy with a 1h system TTL (``CachePolicy(system_ttl="1h")``).

The chat: a system prompt of about 3,000 tokens measured with FakeClaude's own token
counter (:func:`clust.testing.text_tokens`); user turns of varied length (short
follow-ups, questions, pasted logs and code); assistant replies of varied length
answered by FakeClaude (a responder that picks the scripted reply of each turn, so
all scenarios see the same text); between turns the fake clock moves on by a user's
think time (15 s to 4 min, so no 5-minute entry expires unless ``--long-pause`` adds
one pause of that many minutes before the middle turn).

Per scenario: the share of input tokens read from the cache, ``cache_read /
(input + cache_creation + cache_read)``, over turns 2..N and over all turns (and the
worst single turn from turn 2 on); token totals as the store recorded them
(``conv.usage()``, checked against the per-reply usage); the total cost in USD with
the shipped list prices (:class:`~clust.usage.PriceTable`; a model without a list
price, such as every 5.x model, is priced at ``claude-sonnet-4-5``'s and the output
says so); the cost relative to no caching; and every request FakeClaude received
versus accepted (any 4xx counts as rejected).

Targets (the run exits 1 when one is missed): (a) reads at least 85% of input tokens
from the cache over turns 2..N; no scenario has a rejected request; (b) reads and
writes nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from clust import Client, Store
from clust.conversation import CachePolicy
from clust.conversation.records import UsageTotals
from clust.messages import ApiError, Usage
from clust.testing import DEFAULT_MIN_CACHEABLE_TOKENS, DEFAULT_MODELS, FakeClaude, Reply
from clust.testing import text_tokens as fake_tokens
from clust.usage import Price, PriceTable, cache_savings, cost_of

MODEL = "claude-sonnet-5-5"  # the current Sonnet; FakeClaude's minimum cacheable: 1,024
FALLBACK_PRICE_MODEL = "claude-sonnet-4-5"  # newest Sonnet with a shipped list price
SYSTEM_TOKENS = 3_000
TURNS = 50
MAX_TOKENS = 2_048
TARGET_SHARE = 0.85
SEED = 8
PRICE_DAY = date(2026, 11, 30)


# -- the script ----------------------------------------------------------------------------

_SITUATIONS = [
    "a customer reports that a scheduled export did not arrive",
    "the question is about billing for a workspace on the annual plan",
    "someone pastes a stack trace from the command-line tool",
    "a user asks how two features compare",
    "the request touches data that belongs to another workspace",
    "an answer depends on the region the workspace is hosted in",
    "a user asks for a step-by-step migration from the legacy API",
    "the logs show repeated timeouts from the ingestion workers",
    "a question mentions single sign-on or SCIM provisioning",
    "the user is clearly frustrated or in a hurry",
    "a feature is in preview and not generally available",
    "someone asks for the limits of the free tier",
    "the question is ambiguous between the web app and the API",
    "a user asks you to write a query against the reporting warehouse",
    "the documentation and the observed behaviour disagree",
    "a user asks about data retention or deletion",
    "the request is about rotating API keys",
    "a webhook delivery keeps failing with a 4xx status",
    "the user wants to know when a fix will ship",
    "someone asks whether a change is backwards compatible",
]
_ACTIONS = [
    "start with the one-sentence answer, then give the details",
    "quote the exact setting name as it appears in the dashboard",
    "give the command or the code first and explain it after",
    "ask one precise clarifying question instead of guessing",
    "link the relevant page of the handbook by its title",
    "say plainly what you do not know and who can find out",
    "list the steps in order, one action per step",
    "name the plan or role a feature requires before describing it",
    "never promise a date; describe the public roadmap status instead",
    "point out the risk before the workaround, not after it",
    "keep the reply under two hundred words unless code is needed",
    "check the region and plan before you answer anything about limits",
    "offer to open a ticket with the logs attached",
    "reproduce the user's numbers before you explain them",
    "prefer the supported API over scraping the web app",
    "restate the error message in plain words before the fix",
]
_REASONS = [
    "because support engineers read these transcripts later",
    "so that the answer survives being forwarded to a manager",
    "since most users skim the first lines only",
    "because the dashboard labels changed twice this year",
    "to avoid a second round trip",
    "because guesses about security cost more than a question",
    "so that customers on older plans are not misled",
    "since the same question often arrives from several teammates",
    "because legal reviews every statement about retention",
    "to keep answers consistent across the team",
]
_TOPICS = [
    "the nightly export",
    "webhook retries",
    "the billing page",
    "API key rotation",
    "SSO with our identity provider",
    "the ingestion workers",
    "rate limits on the batch endpoint",
    "the reporting warehouse",
    "the CLI upload command",
    "workspace permissions",
    "the audit log",
    "data residency in the EU region",
    "the legacy v1 API",
    "usage alerts",
]
_ASKS = [
    "Can you explain why {t} behaves like this?",
    "What is the right way to configure {t} for a team of forty people?",
    "I tried what you suggested for {t} but it still fails.",
    "Is there a limit on {t} that we might be hitting?",
    "How does {t} interact with the retention settings?",
    "Could you write a short script that checks {t} every hour?",
    "Our auditor asks how {t} is secured — what should I tell them?",
    "Is {t} affected by the change announced last week?",
]
_DETAILS = [
    "We are on the annual plan, hosted in the EU region.",
    "This started on Monday after we rotated our keys.",
    "Nothing changed on our side as far as I know.",
    "The dashboard shows a green status the whole time.",
    "Our security team wants an answer by Friday.",
    "The same setup works in the staging workspace.",
    "I already read the handbook page about it.",
    "We use the Python SDK, version 4.2, from a cron job.",
    "It happens about once an hour, never at night.",
    "Half of the team sees it and the other half does not.",
]
_SHORT = [
    "Thanks, that worked.",
    "And for the staging workspace?",
    "ok, what about {t}?",
    "Can you shorten that to three bullet points?",
    "Which role do I need for that?",
    "Got it. Next question.",
    "Same error again, sorry.",
    "Perfect — and is that documented anywhere?",
    "Could you do the same for {t}?",
]
_PROSE = [
    "The short answer is that {t} reads its settings once per run, so a change made while "
    "a run is in progress applies from the next one.",
    "You can check this in the dashboard under Settings, then Integrations, where {t} "
    "lists its last twenty attempts with their status codes.",
    "If the failures cluster at the top of the hour, the most likely cause is the rate "
    "limit on the batch endpoint, which is shared by every key of the workspace.",
    "Rotating the key does not invalidate the old one immediately: both are accepted "
    "for twenty-four hours, which is what makes a rolling deploy possible.",
    "I would not disable retries: a failed delivery is retried five times with "
    "exponential backoff, and the audit log records every attempt.",
    "For the EU region the data never leaves Frankfurt and Dublin, and the retention "
    "setting applies to exports as well as to the raw events.",
    "Here is what I would do, in order: confirm the plan and the region, reproduce the "
    "request with the CLI in verbose mode, then compare the request id with the logs.",
    "That behaviour is documented in the handbook page called “Delivery guarantees”, "
    "in the section about idempotency keys.",
    "The number you see is the sum over all projects of the workspace, not per project, "
    "which explains why it is higher than your own count.",
    "I am not sure whether the preview flag is enabled for your workspace; support can "
    "check it from the request id in a few minutes.",
    "A safer approach is to keep the old configuration next to the new one for a day and "
    "switch the traffic over once the first nightly run has succeeded.",
    "Note that the CLI caches credentials for an hour, so a rotated key may still be used "
    "by long-running jobs until they restart.",
]


def _words(rng: random.Random, pool: Sequence[str], count: int) -> str:
    topic = rng.choice(_TOPICS)
    return " ".join(rng.choice(pool).format(t=topic) for _ in range(count))


def _log_paste(rng: random.Random) -> str:
    lines = ["Here is the log from the last run:", "```"]
    for _ in range(rng.randint(18, 80)):
        level = rng.choice(["INFO", "INFO", "WARN", "ERROR"])
        lines.append(
            f"2026-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
            f":{rng.randint(0, 59):02d}Z {level} worker-{rng.randint(1, 12)} "
            f"job={rng.getrandbits(40):010x} export step={rng.choice(['fetch', 'merge', 'upload'])}"
            f" took {rng.randint(12, 30_000)} ms (attempt {rng.randint(1, 5)}/5)"
        )
    lines += ["```", rng.choice(_ASKS).format(t=rng.choice(_TOPICS))]
    return "\n".join(lines)


def _code_paste(rng: random.Random) -> str:
    lines = ["This is our script:", "```python", "import os", "import requests", ""]
    for n in range(rng.randint(6, 24)):
        lines += [
            f"def step_{n}(session, workspace_id):",
            f'    url = f"{{BASE}}/v2/workspaces/{{workspace_id}}/exports?page={n}"',
            "    response = session.get(url, timeout=30)",
            "    response.raise_for_status()",
            f'    return response.json()["items"][:{rng.randint(10, 500)}]',
            "",
        ]
    lines += ["```", rng.choice(_ASKS).format(t=rng.choice(_TOPICS))]
    return "\n".join(lines)


def _user_text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(_SHORT).format(t=rng.choice(_TOPICS))
    if kind < 0.85:
        ask = rng.choice(_ASKS).format(t=rng.choice(_TOPICS))
        return " ".join([ask, *rng.sample(_DETAILS, rng.randint(1, 5))])
    return _log_paste(rng) if rng.random() < 0.5 else _code_paste(rng)


def _reply_text(rng: random.Random) -> str:
    paragraphs = [_words(rng, _PROSE, rng.randint(1, 4)) for _ in range(rng.randint(1, 5))]
    if rng.random() < 0.3:
        body = "\n".join(
            f"    result = client.exports.get(workspace_id, page={n})" for n in range(8)
        )
        paragraphs.append(f"```python\n{body}\n```")
    return "\n\n".join(paragraphs)


def system_prompt(target_tokens: int = SYSTEM_TOKENS, seed: int = SEED) -> str:
    """A support assistant's instructions, grown rule by rule until FakeClaude's token
    counter reaches ``target_tokens``."""
    rng = random.Random(seed)
    parts = [
        "You are the support assistant of Northwind Cloud, a hosted data pipeline service. "
        "You answer customers and support engineers in a chat. Follow these rules.",
        "",
    ]
    n = 0
    while fake_tokens("\n".join(parts)) < target_tokens:
        n += 1
        parts.append(
            f"{n}. When {rng.choice(_SITUATIONS)}, {rng.choice(_ACTIONS)}, {rng.choice(_REASONS)}."
        )
    return "\n".join(parts)


@dataclass(frozen=True)
class Turn:
    """One scripted turn: what the user sends, what FakeClaude answers, and how long
    (fake-clock seconds) the user paused before sending."""

    user: str
    reply: str
    pause: float


def make_script(turns: int = TURNS, *, seed: int = SEED, long_pause: float = 0.0) -> list[Turn]:
    """``turns`` turns; the same seed gives the same chat. ``long_pause`` seconds are
    added to the pause before the middle turn."""
    rng = random.Random(seed)
    script = [
        Turn(_user_text(rng), _reply_text(rng), rng.uniform(15.0, 240.0)) for _ in range(turns)
    ]
    if long_pause and turns > 1:
        middle = turns // 2
        turn = script[middle]
        script[middle] = Turn(turn.user, turn.reply, turn.pause + long_pause)
    return script


def _responder(script: Sequence[Turn]) -> Callable[[Any], Reply]:
    def answer(request: Any) -> Reply:
        messages = request.body.get("messages", []) if isinstance(request.body, dict) else []
        index = len(messages) // 2
        return Reply.text(script[index].reply) if index < len(script) else Reply.echo()

    return answer


# -- the scenarios -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A way to send the chat: an automatic cache policy, and optionally the user's own
    marker on the system block."""

    key: str
    label: str
    policy: CachePolicy
    hand_marker: bool = False

    def system(self, text: str) -> Any:
        """The conversation's ``system``: the string, or one block with the user's marker."""
        if not self.hand_marker:
            return text
        return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


DEFAULT = Scenario("a", "(a) default policy", CachePolicy())
OFF = Scenario("b", "(b) no caching", CachePolicy.off())
HAND = Scenario("c", "(c) one hand-placed system breakpoint", CachePolicy.off(), hand_marker=True)
ONE_HOUR = Scenario("d", "(d) default policy, 1h system TTL", CachePolicy(system_ttl="1h"))
SCENARIOS = (DEFAULT, OFF, HAND, ONE_HOUR)


@dataclass(frozen=True)
class TurnUsage:
    """One reply's input split (from the response) and output."""

    turn: int
    input_tokens: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int
    output_tokens: int

    @classmethod
    def of(cls, turn: int, usage: Usage) -> TurnUsage:
        split = usage.cache_creation
        created = usage.cache_creation_input_tokens or 0
        one_hour = split.ephemeral_1h_input_tokens if split is not None else 0
        return cls(
            turn=turn,
            input_tokens=usage.input_tokens,
            cache_write_5m=created - one_hour,
            cache_write_1h=one_hour,
            cache_read=usage.cache_read_input_tokens or 0,
            output_tokens=usage.output_tokens,
        )

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_write_5m + self.cache_write_1h + self.cache_read


def read_share(turns: Sequence[TurnUsage], first: int = 1) -> float:
    """Share of input tokens read from the cache over the turns numbered ``first`` on."""
    chosen = [t for t in turns if t.turn >= first]
    total = sum(t.total_input for t in chosen)
    return sum(t.cache_read for t in chosen) / total if total else 0.0


@dataclass
class ScenarioResult:
    """What one scenario's run produced."""

    scenario: Scenario
    turns: list[TurnUsage]
    requests: int
    """POST /v1/messages requests FakeClaude received during the run."""
    rejected: list[str]
    """One line per request answered with a 4xx (turn, status, error)."""
    totals: UsageTotals
    """What the store recorded (``conv.usage()``)."""
    problems: list[str] = field(default_factory=list)
    """Inconsistencies found (store totals vs replies, requests vs replies)."""

    @property
    def accepted(self) -> int:
        return len(self.turns)

    def share(self, first: int = 1) -> float:
        return read_share(self.turns, first)

    def worst_turn_share(self, first: int = 2) -> float:
        shares = [t.cache_read / t.total_input for t in self.turns if t.turn >= first]
        return min(shares, default=0.0)

    def cost(self, price: Price) -> Decimal:
        return cost_of(self.totals, price, batch=False)

    def savings(self, price: Price) -> Decimal:
        return cache_savings(self.totals, price, batch=False)


def _message_posts(fake: FakeClaude) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.path == "/v1/messages")


def run_scenario(
    store: Store,
    client: Client,
    fake: FakeClaude,
    scenario: Scenario,
    script: Sequence[Turn],
    system: str,
    *,
    model: str = MODEL,
) -> ScenarioResult:
    """Play ``script`` in a new conversation of ``store``. Empties FakeClaude's prompt
    cache first (so scenarios do not read each other's prefixes) and sets its responder."""
    fake.clear_cache()
    fake.set_responder(_responder(script))
    before = _message_posts(fake)
    conv = store.create_conversation(
        model=model, max_tokens=MAX_TOKENS, system=scenario.system(system)
    )
    conv.cache = scenario.policy
    turns: list[TurnUsage] = []
    rejected: list[str] = []
    for number, turn in enumerate(script, start=1):
        if number > 1:
            fake.advance_time(turn.pause)
        try:
            reply = conv.send(client, turn.user)
        except ApiError as error:
            if not 400 <= error.status_code < 500:
                raise
            rejected.append(
                f"turn {number}: {error.status_code} {error.error_type}: {error.message}"
            )
            conv.discard_pending()
            continue
        turns.append(TurnUsage.of(number, reply.usage))
    result = ScenarioResult(scenario, turns, _message_posts(fake) - before, rejected, conv.usage())
    _check_consistency(result)
    return result


def _check_consistency(result: ScenarioResult) -> None:
    totals, turns = result.totals, result.turns
    expected = {
        "requests": len(turns),
        "input_tokens": sum(t.input_tokens for t in turns),
        "cache_creation_5m_input_tokens": sum(t.cache_write_5m for t in turns),
        "cache_creation_1h_input_tokens": sum(t.cache_write_1h for t in turns),
        "cache_read_input_tokens": sum(t.cache_read for t in turns),
        "output_tokens": sum(t.output_tokens for t in turns),
    }
    for name, value in expected.items():
        stored = getattr(totals, name)
        if stored != value:
            result.problems.append(f"store {name} = {stored:,}, replies say {value:,}")
    if result.requests != result.accepted + len(result.rejected):
        result.problems.append(
            f"FakeClaude received {result.requests} requests for "
            f"{result.accepted} replies and {len(result.rejected)} rejections"
        )


# -- prices --------------------------------------------------------------------------------


def price_for(model: str, table: PriceTable | None = None) -> tuple[Price, str]:
    """The list price of ``model``, else ``claude-sonnet-4-5``'s; and a note saying which."""
    prices = table or PriceTable.default()
    found = prices.price_for(model, PRICE_DAY)
    if found is not None:
        return found, f"{found.model} list price"
    fallback = prices.price_for(FALLBACK_PRICE_MODEL, PRICE_DAY)
    assert fallback is not None, "the shipped price table lost claude-sonnet-4-5"
    note = (
        f"{model} has no shipped list price: priced at {fallback.model}'s list price "
        "(ratios do not depend on it)"
    )
    return fallback, note


def min_cacheable(model: str) -> int:
    """FakeClaude's minimum cacheable prefix for ``model`` (its shipped model table)."""
    for info in DEFAULT_MODELS:
        if model == info.id or model in info.aliases:
            return info.min_cacheable_tokens
    return DEFAULT_MIN_CACHEABLE_TOKENS


# -- report --------------------------------------------------------------------------------


def _money(amount: Decimal) -> str:
    return f"{amount:.4f}"


def print_table(results: Sequence[ScenarioResult], price: Price, turns: int) -> None:
    base = next((r for r in results if r.scenario is OFF), None)
    base_cost = base.cost(price) if base is not None else None
    header = (
        f"{'scenario':<38}{f'read t2-{turns}':>11}{'read all':>10}{'worst t2+':>10}"
        f"{'uncached':>10}{'write 5m':>10}{'write 1h':>10}{'read':>10}{'output':>9}"
        f"{'cost $':>9}{'vs off':>8}{'saved $':>9}{'accepted':>10}{'rejected':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        t = r.totals
        cost = r.cost(price)
        ratio = f"{cost / base_cost:.2f}x" if base_cost else "-"
        print(
            f"{r.scenario.label:<38}{r.share(2):>11.1%}{r.share(1):>10.1%}"
            f"{r.worst_turn_share(2):>10.1%}{t.input_tokens:>10,}"
            f"{t.cache_creation_5m_input_tokens:>10,}{t.cache_creation_1h_input_tokens:>10,}"
            f"{t.cache_read_input_tokens:>10,}{t.output_tokens:>9,}{_money(cost):>9}{ratio:>8}"
            f"{_money(r.savings(price)):>9}{f'{r.accepted}/{r.requests}':>10}{len(r.rejected):>9}"
        )


def check_targets(results: Sequence[ScenarioResult], turns: int) -> list[tuple[str, bool]]:
    by_key = {r.scenario.key: r for r in results}
    checks: list[tuple[str, bool]] = []
    if DEFAULT.key in by_key:
        share = by_key[DEFAULT.key].share(2)
        checks.append(
            (
                f"(a) reads {share:.1%} of input tokens from the cache over turns 2-{turns} "
                f"(target >= {TARGET_SHARE:.0%})",
                share >= TARGET_SHARE,
            )
        )
    if OFF.key in by_key:
        off = by_key[OFF.key].totals
        written = off.cache_creation_input_tokens
        checks.append(
            (
                f"(b) reads {off.cache_read_input_tokens:,} and writes {written:,} cache tokens "
                "(target 0 and 0)",
                off.cache_read_input_tokens == 0 and written == 0,
            )
        )
    for r in results:
        label = r.scenario.label
        checks.append(
            (
                f"{label}: {r.accepted} of {r.requests} requests accepted, "
                f"{len(r.rejected)} rejected (target: all {turns} accepted)",
                not r.rejected and r.accepted == turns,
            )
        )
        checks.extend((f"{label}: {problem}", False) for problem in r.problems)
        checks.extend((f"{label}: rejected {line}", False) for line in r.rejected)
    return checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=TURNS, help=f"turns (default {TURNS})")
    parser.add_argument("--model", default=MODEL, help=f"model id (default {MODEL})")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the scripted chat")
    parser.add_argument(
        "--long-pause",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help="one extra pause of this many minutes before the middle turn (default none)",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    system = system_prompt(seed=args.seed)
    script = make_script(args.turns, seed=args.seed, long_pause=args.long_pause * 60)
    price, price_note = price_for(args.model)
    system_tokens = fake_tokens(system)
    minimum = min_cacheable(args.model)
    results: list[ScenarioResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="clust-bench-cache-") as tmp,
        FakeClaude() as fake,
        Store(f"sqlite:///{Path(tmp) / 'store.db'}") as store,
        Client(api_key="bench", base_url=fake.base_url) as client,
    ):
        for scenario in SCENARIOS:
            results.append(
                run_scenario(store, client, fake, scenario, script, system, model=args.model)
            )

    users = sorted(fake_tokens(t.user) for t in script)
    replies = sorted(fake_tokens(t.reply) for t in script)
    pauses = [t.pause for t in script[1:]]
    print(
        f"{args.turns}-turn chat with {args.model} on FakeClaude's prompt-cache simulation, "
        "SQLite store.\n"
        f"System prompt: {system_tokens:,} tokens (FakeClaude's counter; minimum cacheable "
        f"prefix for {args.model}: {minimum:,}).\n"
        f"User turns: {users[0]:,} to {users[-1]:,} tokens (median {users[len(users) // 2]:,}, "
        f"total {sum(users):,}); replies: {replies[0]:,} to {replies[-1]:,} "
        f"(median {replies[len(replies) // 2]:,}, total {sum(replies):,}).\n"
        f"Pauses between turns: {min(pauses, default=0):.0f} to {max(pauses, default=0):.0f} s "
        "of fake time.\n"
        f"Prices: {price_note}: input ${price.input}, output ${price.output}, 5m write "
        f"${price.cache_write_5m}, 1h write ${price.cache_write_1h}, read ${price.cache_read} "
        "per million tokens.\n"
    )
    print_table(results, price, args.turns)
    print(
        "\nread = cache_read / (uncached input + cache writes + cache_read); worst t2+ = the "
        "lowest single-turn share from turn 2 on;\ntoken columns are the store's totals "
        "(conv.usage()); accepted = replies / POST /v1/messages received by FakeClaude."
    )
    print("\nTargets:")
    checks = check_targets(results, args.turns)
    for what, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    missed = sum(1 for _, ok in checks if not ok)
    took = time.perf_counter() - started
    print(f"targets: {len(checks) - missed} met, {missed} missed; run took {took:.1f} s")
    return 1 if missed else 0


if __name__ == "__main__":
    # Exit only on failure: `python -m benchmarks` runs every benchmark in one process
    # (runpy), so even a SystemExit(0) would stop the ones after this one.
    if main(sys.argv[1:]):
        raise SystemExit(1)
