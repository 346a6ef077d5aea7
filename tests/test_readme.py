"""The README's examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from clust.testing import FakeClaude

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_offline_testing_example_passes() -> None:
    [code] = [block for block in _python_blocks() if "def test_my_app" in block]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    with FakeClaude() as fake:
        namespace["test_my_app_survives_overload_and_cut_streams"](fake)


def test_quickstart_demo_persists_and_resumes(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
    ).stdout
    assert "ran get_weather" in out
    assert "take an umbrella" in out
    assert "resumed" in out and "with 4 stored turns" in out
    assert "the resumed request carried 5 messages" in out
    assert "stored: 6 turns, 3 replies" in out
    assert "extended-cache-ttl-2025-04-11" in out
    assert (tmp_path / "clust_demo.db").exists()


def test_conversation_example_runs(tmp_path: Path, monkeypatch: Any) -> None:
    [code] = [block for block in _python_blocks() if 'Store("sqlite:///chat.db")' in block]
    monkeypatch.chdir(tmp_path)
    with FakeClaude() as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "offline")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        namespace: dict[str, Any] = {}
        exec(compile(code, "README.md", "exec"), namespace)
        conv = namespace["conv"]
        assert len(conv.history) == 4
        assert conv.usage().requests == 2
        assert fake.last_request.body["temperature"] == 0.3
    namespace["store"].close()
    namespace["client"].close()


def test_tool_loop_example_runs(tmp_path: Path) -> None:
    from clust import Client, Store
    from clust.testing import Reply

    [code] = [block for block in _python_blocks() if "@tool(idempotent=True" in block]
    with (
        FakeClaude() as fake,
        Client(api_key="offline", base_url=fake.base_url) as client,
        Store(f"sqlite:///{tmp_path / 'tools.db'}") as store,
    ):
        fake.enqueue(
            Reply.tool_use("get_weather", {"city": "Paris"}),
            Reply.text("Rain in Paris."),
        )
        conv = store.create_conversation(model="claude-sonnet-5-5", max_tokens=1024)
        namespace: dict[str, Any] = {"conv": conv, "client": client}
        exec(compile(code, "README.md", "exec"), namespace)
        result = namespace["result"]
        assert result.stop == "end_turn"
        assert result.text == "Rain in Paris."
        sent = fake.requests[1].body["messages"][-1]["content"][0]
        assert sent["content"] == "14 C and light rain in Paris"


def test_usage_and_budget_example_runs(tmp_path: Path, monkeypatch: Any) -> None:
    """The budget snippet prices the model the other snippets use, so a budgeted send
    goes through and its cost is a number."""
    from clust import Client

    [code] = [block for block in _python_blocks() if "budgets=[Budget(" in block]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    store = namespace["store"]
    with FakeClaude() as fake, Client(api_key="offline", base_url=fake.base_url) as client:
        conv = store.create_conversation(model="claude-sonnet-5-5", max_tokens=64)
        conv.send(client, "Hello")
        assert conv.usage().cost is not None and conv.usage().cost > 0
    store.close()
