"""The retry rules of clust.protocol.retry, decided without any I/O."""

from __future__ import annotations

import email.utils
import time

import pytest

from clust.protocol.retry import RetryPolicy, is_retryable_status, server_requested_wait

RETRIED = [408, 409, 429, 500, 502, 503, 504, 529, 599]
NOT_RETRIED = [400, 401, 402, 403, 404, 413, 422]


@pytest.mark.parametrize("status", RETRIED)
def test_retried_statuses(status: int) -> None:
    assert is_retryable_status(status, {})


@pytest.mark.parametrize("status", NOT_RETRIED)
def test_not_retried_statuses(status: int) -> None:
    assert not is_retryable_status(status, {})


@pytest.mark.parametrize("status", NOT_RETRIED)
def test_should_retry_true_forces_retry(status: int) -> None:
    assert is_retryable_status(status, {"x-should-retry": "true"})


@pytest.mark.parametrize("status", RETRIED)
def test_should_retry_false_forbids_retry(status: int) -> None:
    assert not is_retryable_status(status, {"x-should-retry": "false"})


def test_should_retry_is_exact_lowercase() -> None:
    assert not is_retryable_status(400, {"x-should-retry": "True"})
    assert is_retryable_status(500, {"x-should-retry": "FALSE"})


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "nonsense", "retry-after": "3"}, 3.0),
        ({"retry-after": "0"}, None),
        ({"retry-after": "-4"}, None),
        ({"retry-after-ms": "0"}, None),
        # a number in retry-after-ms decides, even one that asks for no wait
        ({"retry-after-ms": "0", "retry-after": "4"}, None),
        ({"retry-after-ms": "-1", "retry-after": "4"}, None),
        ({"retry-after-ms": "nan", "retry-after": "4"}, None),
        ({"retry-after": "Wed, 21 Oct 9999999999 07:28:00 GMT"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 99999999999999999999:28:00 GMT"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({}, None),
    ],
)
def test_server_requested_wait(headers: dict[str, str], expected: float | None) -> None:
    assert server_requested_wait(headers) == expected


def test_server_requested_wait_http_date() -> None:
    now = 1_800_000_000.0
    future = email.utils.formatdate(now + 30, usegmt=True)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert server_requested_wait({"retry-after": future}, now=lambda: now) == pytest.approx(30)
    assert server_requested_wait({"retry-after": past}, now=lambda: now) is None
    # asctime format names no zone: it is GMT
    asctime = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(now + 30))
    assert server_requested_wait({"retry-after": asctime}, now=lambda: now) == pytest.approx(30)


def test_backoff_doubles_caps_and_only_shortens() -> None:
    policy = RetryPolicy()
    assert [policy.backoff(k, jitter=0.0) for k in range(7)] == [0.5, 1, 2, 4, 8, 8, 8]
    assert policy.backoff(0, jitter=0.999) == pytest.approx(0.5 * (1 - 0.25 * 0.999))
    for k in range(6):
        assert 0.75 * min(0.5 * 2**k, 8) <= policy.backoff(k) <= min(0.5 * 2**k, 8)


def test_decide_status_counts_retries() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.decide_status(0, 529, {}).retry
    assert policy.decide_status(1, 529, {}).retry
    assert not policy.decide_status(2, 529, {}).retry
    assert not RetryPolicy(max_retries=0).decide_status(0, 529, {}).retry


def test_decide_status_uses_server_wait() -> None:
    decision = RetryPolicy().decide_status(0, 429, {"retry-after": "3"})
    assert decision.retry and decision.delay == 3.0 and decision.server_wait == 3.0


def test_server_wait_over_ceiling_is_not_slept() -> None:
    decision = RetryPolicy(max_server_wait=60).decide_status(0, 429, {"retry-after": "86400"})
    assert not decision.retry
    assert decision.wait_exceeds_ceiling
    assert decision.server_wait == 86400.0


def test_zero_or_invalid_server_wait_falls_back_to_backoff() -> None:
    for value in ("0", "-1", "garbage"):
        decision = RetryPolicy().decide_status(0, 503, {"retry-after": value})
        assert decision.retry and 0.375 <= decision.delay <= 0.5


def test_transport_failures_retry_with_backoff() -> None:
    policy = RetryPolicy(max_retries=1)
    first = policy.decide_transport_failure(0)
    assert first.retry and 0.375 <= first.delay <= 0.5
    assert not policy.decide_transport_failure(1).retry


def test_stream_errors_retry_only_for_transient_types() -> None:
    policy = RetryPolicy()
    assert policy.decide_stream_error(0, "overloaded_error").retry
    assert not policy.decide_stream_error(0, "invalid_request_error").retry
    assert not policy.decide_stream_error(2, "overloaded_error").retry


@pytest.mark.parametrize("kwargs", [{"max_retries": -1}, {"max_server_wait": -5}])
def test_policy_rejects_negative_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="allowed >= 0"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
