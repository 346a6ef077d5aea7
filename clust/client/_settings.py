"""Client settings shared by ``Client`` and ``AsyncClient``: credentials, URL, timeouts, retries."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from clust._version import __version__
from clust.messages.errors import MissingCredentials
from clust.protocol.credentials import check_secret
from clust.protocol.request import DEFAULT_BASE_URL, AuthScheme, Credentials, base_headers
from clust.protocol.retry import RetryPolicy

__all__ = ["DEFAULT_TIMEOUT", "ClientSettings", "TimeoutTypes", "settings_from_env"]

DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
"""600 s to read a reply, 5 s to connect: the official SDK's defaults."""

TimeoutTypes = float | httpx.Timeout


@dataclass(frozen=True)
class ClientSettings:
    """Everything a client needs besides its HTTP connection pool.

    The key is held by ``credentials`` alone (whose repr hides it); ``headers`` are
    the other headers of every call: the key's header is added to each request as it
    is sent (:class:`clust.client._auth.KeyAuth`).
    """

    credentials: Credentials
    base_url: str
    timeout: httpx.Timeout
    retry_policy: RetryPolicy
    headers: Mapping[str, str]

    @classmethod
    def build(
        cls,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: TimeoutTypes | None,
        max_retries: int | None,
        retry_policy: RetryPolicy | None,
        default_headers: Mapping[str, str] | None,
        auth_scheme: AuthScheme,
        user_agent: str,
    ) -> ClientSettings:
        if not api_key:
            raise MissingCredentials(
                "no API key: pass api_key=..., or set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN)"
            )
        credentials = Credentials(api_key, auth_scheme)
        policy = retry_policy or RetryPolicy()
        if max_retries is not None:
            policy = replace(policy, max_retries=max_retries)
        return cls(
            credentials=credentials,
            base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"),
            timeout=as_timeout(timeout if timeout is not None else DEFAULT_TIMEOUT),
            retry_policy=policy,
            headers=base_headers(
                credentials, user_agent=user_agent, default_headers=default_headers
            ),
        )


def as_timeout(value: TimeoutTypes) -> httpx.Timeout:
    """A timeout as httpx wants it; a number is the overall timeout, connect capped at 5 s."""
    if isinstance(value, httpx.Timeout):
        return value
    if isinstance(value, bool) or value <= 0:
        raise ValueError(f"timeout={value!r} is invalid: allowed a number of seconds > 0")
    return httpx.Timeout(float(value), connect=min(float(value), 5.0))


def user_agent() -> str:
    """``clust/<version>``."""
    return f"clust/{__version__}"


def settings_from_env(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments from the environment, explicit ``overrides`` winning.

    Reads ``ANTHROPIC_API_KEY`` (else ``ANTHROPIC_AUTH_TOKEN``), ``ANTHROPIC_BASE_URL``
    and ``ANTHROPIC_CUSTOM_HEADERS`` (one ``Name: value`` per line).
    """
    arguments = dict(overrides)
    if arguments.get("api_key") is None:
        for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
            value = os.environ.get(name)
            if value:
                check_secret(value, name)  # so that an error names the variable
                arguments["api_key"] = value
                break
        else:
            arguments["api_key"] = None
    if arguments.get("base_url") is None:
        arguments["base_url"] = os.environ.get("ANTHROPIC_BASE_URL") or None
    custom = os.environ.get("ANTHROPIC_CUSTOM_HEADERS")
    if custom:
        headers = _parse_custom_headers(custom)
        headers.update(arguments.get("default_headers") or {})
        arguments["default_headers"] = headers
    return arguments


def _parse_custom_headers(raw: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers[name.strip()] = value.strip()
    return headers
