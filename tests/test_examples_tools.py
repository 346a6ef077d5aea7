"""``examples/tool_loop.py`` runs offline and tells its story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "tool_loop.py"


def run_example(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=cwd,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_tool_loop_example_stops_resumes_and_finishes(tmp_path: Path) -> None:
    out = run_example(cwd=tmp_path)
    first, _, resumed = out.partition("Later, in a new process")
    # The first run: two requests, two tools run, then max_steps.
    assert "ran get_weather(city='Paris') -> 18 C and dry in Paris tonight" in first
    assert "ran find_tables(city='Paris', people=2, time='20:00')" in first
    assert "-> stopped: max_steps" in first
    assert "book_table" not in first.split("-> stopped")[0]
    # The second run picks up: the stored result is reused, not run again.
    assert "reused the stored result of find_tables" in resumed
    assert "ERROR result for book_table(restaurant='Chez Janou', time='20:00', people=0)" in out
    assert "people: Input should be greater than or equal to 1" in out
    assert "ran book_table(restaurant='Chez Janou', time='20:00', people=2)" in out
    assert "-> finished: end_turn" in resumed
    assert "Final answer: All set" in out
    assert "Tools that really ran: book_table x1, find_tables x1, get_weather x1" in out
    assert "Stored: 10 turns, 5 replies" in out
    assert not list(tmp_path.iterdir())  # the default database lives in a temp dir


def test_tool_loop_example_takes_a_database_url(tmp_path: Path) -> None:
    out = run_example(f"sqlite:///{tmp_path / 'demo.db'}", cwd=tmp_path)
    assert "-> finished: end_turn" in out
    assert (tmp_path / "demo.db").exists()
