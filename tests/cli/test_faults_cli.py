"""Faults the ``clust`` command meets print one ``clust: ...`` line and exit with the
documented status, never a traceback: a price file that overflows or nests too deep
(exit 1), an API key that could not be sent (exit 2, the key not quoted, nothing
sent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli.cli_support import assert_one_line_failure, clean_env, clust

from clust.testing import FakeClaude

FRAGMENT = "Mj4Rt8Yp2Ks6"
SECRET = f"sk-ant-api03-{FRAGMENT}-tail"

ENTRY = '{"model": "m", "effective_from": "2026-01-01", "input": %s, "output": "1"}'


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('{"prices": [%s]}' % (ENTRY % "1e999999999"), "prices[0].input=Decimal('1E+999999999')"),
        ("[" * 100_000 + "]" * 100_000, "nested at most 32 deep"),
        ('{"prices": ' * 50_000 + "[]" + "}" * 50_000, "nested at most 32 deep"),
    ],
)
def test_a_bad_price_file_is_one_line(
    tmp_path: Path, sqlite_url: str, content: str, said: str
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    result = clust("usage", "--prices", str(path), "--db", sqlite_url, env=clean_env(tmp_path))
    line = assert_one_line_failure(result, code=1)
    assert said in line and "prices.json" in line


@pytest.mark.parametrize(
    ("variable", "key", "said"),
    [
        ("ANTHROPIC_API_KEY", SECRET + "\n", "ANTHROPIC_API_KEY: ends with a newline (U+000A)"),
        ("ANTHROPIC_API_KEY", SECRET + "\u2019", "ANTHROPIC_API_KEY: contains a non-ASCII"),
        ("ANTHROPIC_AUTH_TOKEN", "\t" + SECRET, "ANTHROPIC_AUTH_TOKEN: starts with a tab"),
    ],
)
def test_an_unsendable_key_is_one_line_exit_2_and_never_sent(
    fake: FakeClaude, tmp_path: Path, sqlite_url: str, variable: str, key: str, said: str
) -> None:
    env = clean_env(tmp_path, fake.base_url)
    del env["ANTHROPIC_API_KEY"]
    env[variable] = key
    result = clust("chat", "--db", sqlite_url, env=env, input="Hello\n")
    line = assert_one_line_failure(result, code=2)
    assert line.startswith(f"clust: {said}")
    assert FRAGMENT not in result.stdout + result.stderr
    assert fake.requests == []
