"""Cache effectiveness on FakeClaude's caching simulation (issue 8): a shorter run of the
chat of ``benchmarks/bench_cache.py``, through the same code (``run_scenario``), on SQLite
and PostgreSQL. FakeClaude validates every request, so "no rejected request" also means no
cache rule (4 breakpoints, 1h before 5m, markable blocks) was broken."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from clust import Client, Store
from clust.testing import FakeClaude, text_tokens

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) leaves the repo root out
    sys.path.insert(0, str(ROOT))
from benchmarks import bench_cache as bench  # noqa: E402 (needs the root on sys.path)

TURNS = 12
SCRIPT = bench.make_script(TURNS)
SYSTEM = bench.system_prompt()


def run(
    store: Store, client: Client, fake: FakeClaude, scenario: bench.Scenario
) -> bench.ScenarioResult:
    result = bench.run_scenario(store, client, fake, scenario, SCRIPT, SYSTEM)
    assert result.rejected == []
    assert result.problems == []  # store totals == the replies' usage; one request per turn
    assert (result.accepted, result.requests) == (TURNS, TURNS)
    return result


def test_the_script_is_the_benchmarks() -> None:
    assert 2_990 <= text_tokens(SYSTEM) <= 3_050
    assert text_tokens(SYSTEM) > bench.min_cacheable(bench.MODEL)
    sizes = [text_tokens(turn.user) for turn in bench.make_script(bench.TURNS)]
    assert min(sizes) < 20 and max(sizes) > 300  # short follow-ups and pasted logs/code
    assert all(turn.pause < 300 for turn in SCRIPT)  # no 5-minute entry expires


def test_default_policy_reads_85_percent_from_turn_two(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    result = run(store, client, fake, bench.DEFAULT)
    assert result.share(2) >= bench.TARGET_SHARE
    assert result.turns[0].cache_read == 0
    reads = [t.cache_read for t in result.turns[1:]]
    assert reads == sorted(reads) and len(set(reads)) == len(reads)  # the moving breakpoint
    # Every request since the first was read up to the previous turn's breakpoint: only the
    # previous reply and the new user turn (and the request overhead) are not read.
    for before, after in itertools.pairwise(result.turns):
        assert after.cache_read == before.cache_read + before.cache_write_5m


def test_no_cache_reads_and_writes_nothing(store: Store, client: Client, fake: FakeClaude) -> None:
    result = run(store, client, fake, bench.OFF)
    assert result.totals.cache_read_input_tokens == 0
    assert result.totals.cache_creation_input_tokens == 0
    assert result.share(1) == 0.0


def test_default_policy_beats_one_hand_placed_breakpoint_and_no_cache(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    default = run(store, client, fake, bench.DEFAULT)
    hand = run(store, client, fake, bench.HAND)
    off = run(store, client, fake, bench.OFF)
    assert 0 < hand.share(2) < default.share(2)
    # The hand-placed breakpoint reads the system prompt and nothing after it.
    assert all(t.cache_read == hand.turns[1].cache_read for t in hand.turns[1:])
    price, _ = bench.price_for(bench.MODEL)
    assert default.cost(price) < hand.cost(price) < off.cost(price)
    # The same chat: same prompt tokens in every scenario, only their split differs.
    assert [t.total_input for t in default.turns] == [t.total_input for t in off.turns]


def test_one_hour_system_ttl_is_accepted_and_reads_as_much(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    default = run(store, client, fake, bench.DEFAULT)
    hour = run(store, client, fake, bench.ONE_HOUR)
    assert hour.totals.cache_creation_1h_input_tokens > 0
    assert hour.share(2) == pytest.approx(default.share(2))
