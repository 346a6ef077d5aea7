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


def test_quickstart_example_runs() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "ran get_weather" in out
    assert "take an umbrella" in out
    assert "extended-cache-ttl-2025-04-11" in out
