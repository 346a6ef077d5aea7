"""Every script in ``examples/`` runs offline and prints what it is meant to show.

Each one runs in a fresh process, in an empty working directory, with
``ANTHROPIC_API_KEY`` removed from the environment (so FakeClaude answers). A new
example needs an entry in ``EXPECTED``: the test of an unlisted script fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(
    path for path in (ROOT / "examples").glob("*.py") if not path.name.startswith("_")
)

# Per script: patterns (regular expressions) its output must contain.
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        r"resumed \S+ with 4 stored turns",
        r"the resumed request carried 5 messages",
    ],
    "tool_loop.py": [r"-> finished: end_turn", r"Final answer: All set"],
    "basic_message.py": [
        r"Hello! I'm Claude\. How can I help you today\?",
        r"stop_reason=end_turn, tokens in/out=\d+/\d+, request-id=req_",
        r"capital of France\? One word\.\nParis\.",
    ],
    "streaming.py": [
        r"Rain on the rooftops,\nthe kettle starts to whistle,\na cat stretches, yawns\.",
        r"events: message_start x1, .*content_block_delta x\d+, .*message_stop x1",
        r"same as the final message: True",
    ],
    "system_prompt_cache.py": [
        r"usage: input=\d+ cache_creation=([1-9]\d*) \(5m=\1, 1h=0\) cache_read=0",
        r"first call wrote ([1-9]\d*) tokens to the cache; second call read \1 from it",
        r"after 6 minutes: cache_read=0, written again=[1-9]",
    ],
    "one_hour_cache.py": [
        r"first call: cache_creation=([1-9]\d*) \(1h=\1, 5m=0\)",
        r"sent anthropic-beta: extended-cache-ttl-2025-04-11\n",
        r"40 minutes later[\s\S]*second call: cache_read=[1-9]",
    ],
    "tool_use.py": [
        r"tool_use toolu_\w+: get_weather\(\{\"city\": \"Paris\"\}\) "
        r"-> '14 C and light rain in Paris'",
        r"take an umbrella\.  \[stop_reason=end_turn\]",
        r"turns sent in the last request: 3",
    ],
    "conversation_management.py": [
        r"user u-1 has 2: \['Recipe ideas', 'Trip to Lisbon'\]",
        r"it keeps 2 of 4 turns",
        r"imported as \w+ with 4 turns, same history: True",
        r"get_conversation raises ConversationNotFound",
        r"usage rows: 7 in all \(the import copied 2\), 1 detached",
    ],
    "usage_queries.py": [
        r"shipped prices only: cost=None, unpriced_models=\('claude-haiku-5-5', "
        r"'claude-sonnet-5-5'\)",
        r"\n  claude-sonnet-5-5 +3 ",
        r"\n  \d{4}-\d\d-\d\d +5 ",
        r"\n  alice +3 ",
        r"hit ratio [1-9][\d.]*%\); cost \$0\.\d+, caching saved \$0\.0*[1-9]",
    ],
}


def run(script: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLUST_EXAMPLE_MODEL")
    }
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_every_example_is_covered() -> None:
    assert {path.name for path in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("script", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs_offline(script: Path, tmp_path: Path) -> None:
    patterns = EXPECTED.get(script.name)
    assert patterns, f"add the key lines of examples/{script.name} to EXPECTED"
    done = run(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[offline: FakeClaude" in done.stdout or script.name in ("quickstart.py", "tool_loop.py")
    missing = [pattern for pattern in patterns if not re.search(pattern, done.stdout)]
    assert not missing, f"{missing} not in the output:\n{done.stdout}"
