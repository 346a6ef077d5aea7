"""Helpers of the ``clust`` command tests (importable as ``cli.cli_support``): run
``python -m clust`` in a subprocess with a clean environment, or drive it through a
pseudo-terminal."""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "PtySession",
    "assert_one_line_failure",
    "clean_env",
    "clust",
]

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")
_REMOVED = ("ANTHROPIC_", "CLUST_DATABASE_URL", "XDG_DATA_HOME", "APPDATA")


def clean_env(tmp_path: Path, base_url: str | None = None, **extra: str | None) -> dict[str, str]:
    """An environment with HOME, XDG_DATA_HOME, APPDATA and TMPDIR under ``tmp_path``,
    no ANTHROPIC_* or CLUST_DATABASE_URL, and (with ``base_url``) an API key and base
    URL pointing at a FakeClaude. ``extra`` sets variables (``None`` removes one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_REMOVED)}
    for name in ("home", "xdg", "appdata", "tmp"):
        (tmp_path / name).mkdir(exist_ok=True)
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        APPDATA=str(tmp_path / "appdata"),
        TMPDIR=str(tmp_path / "tmp"),
        TERM="dumb",
        PYTHONUNBUFFERED="1",
    )
    if base_url is not None:
        env.update(ANTHROPIC_API_KEY="test-key", ANTHROPIC_BASE_URL=base_url)
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def clust(
    *args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m clust ARGS`` (stdin: ``input``, or empty)."""
    return subprocess.run(
        [sys.executable, "-m", "clust", *args],
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """Exit ``code``, no traceback, and stderr one ``clust: ...`` line; return that line."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("clust: "), result.stderr
    return lines[0]


class PtySession:
    """``python -m clust ARGS`` with a pseudo-terminal as stdin, stdout and stderr."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "clust", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=dict(env),
            close_fds=True,
        )
        os.close(slave)
        self._master = master
        self._raw = ""
        self._position = 0  # where the next expect() starts looking
        self._eof = False

    @property
    def output(self) -> str:
        """Everything read so far, without terminal escape sequences or ``\\r``."""
        return ANSI.sub("", self._raw).replace("\r", "")

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self._master, 4096)
        except OSError:  # EIO: the child closed its side
            chunk = b""
        if not chunk:
            self._eof = True
        self._raw += chunk.decode("utf-8", errors="replace")

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears after the previous match."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern).search(self.output, self._position)
            if found:
                self._position = found.end()
                return found
            if self._eof or time.monotonic() > deadline:
                raise AssertionError(
                    f"{pattern!r} not in the output after position {self._position}:\n{self.output}"
                )
            self._read(0.1)

    def send(self, text: str) -> None:
        """Type ``text`` (``\\r`` is the Enter key, ``\\x04`` Ctrl-D)."""
        os.write(self._master, text.encode())

    def wait(self, timeout: float = 20.0) -> int:
        """Read to the end of the output and return the exit status."""
        deadline = time.monotonic() + timeout
        while not self._eof and time.monotonic() < deadline:
            self._read(0.1)
        try:
            return self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            os.close(self._master)
