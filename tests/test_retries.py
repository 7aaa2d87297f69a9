"""The retry rules of ``_retries``: pure functions, tested on their own."""

from __future__ import annotations

import email.utils
import random

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

import chuizi_async as ca
from chuizi_async._error_rules import is_retryable, submission_uncertain
from chuizi_async._retries import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_RETRY_AFTER,
    MAX_TIMEOUTS,
    RATE_LIMIT_PATIENCE,
    RetrySubmissions,
    parse_retry_after,
    retry_delay,
    should_retry,
    should_retry_submission,
    silent_too_often,
    waits_out,
)

NOW = 1_800_000_000.0


@pytest.mark.parametrize("status", [408, 429, 500, 501, 502, 503, 504, 599])
def test_should_retry_timeouts_rate_limits_and_server_errors(status: int) -> None:
    assert should_retry(status) is True


@pytest.mark.parametrize("status", [200, 201, 301, 400, 401, 403, 404, 409, 418, 422])
def test_should_not_retry_other_statuses(status: int) -> None:
    assert should_retry(status) is False


def test_should_never_retry_insufficient_balance() -> None:
    assert should_retry(402) is False


@pytest.mark.parametrize(
    "error",
    [ca.APIConnectionError("reset"), ca.APITimeoutError("slow"), ca.ResponseFormatError("html")],
    ids=lambda e: type(e).__name__,
)
def test_errors_without_a_usable_answer_are_retryable(error: ca.ChuiziError) -> None:
    assert is_retryable(error) is True


@pytest.mark.parametrize(
    "error",
    [
        ca.InvalidRequest("bad"),
        ca.InsufficientBalanceError(402, "top up"),
        ca.AuthenticationError(401, "no key"),
        ca.GenerationFailed("gen-1", "policy"),
        ca.GenerationTimeout("gen-1"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_refusals_and_outcomes_are_not_retryable(error: ca.ChuiziError) -> None:
    assert is_retryable(error) is False


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 4, 5, 10, 40, 1000])
def test_retry_delay_stays_within_the_full_jitter_bounds(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 32))
    delays = [retry_delay(attempt, rng=rng) for _ in range(500)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # full jitter: the whole range is used, not just the top of it
    assert min(delays) < ceiling * 0.1
    assert max(delays) > ceiling * 0.9


def test_retry_delay_honours_base_and_cap() -> None:
    rng = random.Random(1)
    delays = [retry_delay(3, base=0.1, cap=0.5, rng=rng) for _ in range(200)]
    assert all(0.0 <= d <= 0.5 for d in delays)
    small = [retry_delay(1, base=0.1, cap=10.0, rng=rng) for _ in range(200)]
    assert all(0.0 <= d <= 0.2 for d in small)


def test_retry_delay_is_reproducible_with_a_seeded_rng() -> None:
    first = [retry_delay(n, rng=random.Random(42)) for n in range(6)]
    second = [retry_delay(n, rng=random.Random(42)) for n in range(6)]
    assert first == second


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0", 0.0), ("0.25", 0.25), ("1.5", 1.5), (" 7 ", 7.0)],
)
def test_parse_retry_after_reads_seconds(value: str, expected: float) -> None:
    assert parse_retry_after({"retry-after": value}) == pytest.approx(expected)


def test_parse_retry_after_reads_a_future_http_date() -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW) == pytest.approx(30.0)


def test_parse_retry_after_of_a_past_http_date_is_zero() -> None:
    date = email.utils.formatdate(NOW - 300, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW) == 0.0


def test_parse_retry_after_of_a_far_http_date_is_capped() -> None:
    date = email.utils.formatdate(NOW + 86_400, usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=NOW) == MAX_RETRY_AFTER


def test_parse_retry_after_prefers_milliseconds() -> None:
    headers = {"retry-after-ms": "1500", "retry-after": "9"}
    assert parse_retry_after(headers) == pytest.approx(1.5)


def test_parse_retry_after_falls_back_from_unreadable_milliseconds() -> None:
    headers = {"retry-after-ms": "soon", "retry-after": "4"}
    assert parse_retry_after(headers) == pytest.approx(4.0)


@pytest.mark.parametrize("value", ["soon", "", "NaN", "nan", "Wed, 99 Foo 20xx", "1,5"])
def test_parse_retry_after_of_garbage_is_none(value: str) -> None:
    assert parse_retry_after({"retry-after": value}) is None


def test_parse_retry_after_of_nan_milliseconds_is_none() -> None:
    assert parse_retry_after({"retry-after-ms": "nan"}) is None


@pytest.mark.parametrize("value", ["-5", "-0.5"])
def test_parse_retry_after_is_never_negative(value: str) -> None:
    assert parse_retry_after({"retry-after": value}) == 0.0
    assert parse_retry_after({"retry-after-ms": value}) == 0.0


@pytest.mark.parametrize("value", ["121", "3600", "1e9", "inf"])
def test_parse_retry_after_is_capped(value: str) -> None:
    assert parse_retry_after({"retry-after": value}) == MAX_RETRY_AFTER


def test_parse_retry_after_caps_milliseconds_too() -> None:
    assert parse_retry_after({"retry-after-ms": "10000000"}) == MAX_RETRY_AFTER


def test_parse_retry_after_without_the_header_is_none() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after({"x-ratelimit-reset": "30"}) is None


@pytest.mark.parametrize("name", ["Retry-After", "RETRY-AFTER", "retry-after", "rEtRy-AfTeR"])
def test_parse_retry_after_header_name_is_case_insensitive_in_a_plain_dict(name: str) -> None:
    assert parse_retry_after({name: "2"}) == pytest.approx(2.0)


def test_parse_retry_after_reads_aiohttp_header_maps_in_any_case() -> None:
    headers = CIMultiDictProxy(CIMultiDict({"RETRY-AFTER": "3", "Content-Type": "text/plain"}))
    assert parse_retry_after(headers) == pytest.approx(3.0)
    assert parse_retry_after(CIMultiDictProxy(CIMultiDict({"Server": "x"}))) is None


@pytest.mark.parametrize("name", ["Retry-After-Ms", "RETRY-AFTER-MS"])
def test_parse_retry_after_ms_name_is_case_insensitive_in_a_plain_dict(name: str) -> None:
    assert parse_retry_after({name: "250"}) == pytest.approx(0.25)


# -- submissions: retry_submissions="idempotent" | "safe" -------------------------------------

NOTHING_SENT: list[ca.ChuiziError] = [
    ca.APIConnectError("refused"),
    ca.APIConnectTimeout("no pooled connection in time"),
]
WENT_OUT_NO_ANSWER: list[ca.ChuiziError] = [
    ca.APIConnectionError("reset"),
    ca.APITimeoutError("read timed out"),
    ca.ResponseFormatError("a 200 that is not JSON"),
]
RETRYABLE_ANSWERS: list[ca.ChuiziError] = [
    ca.APIError(408, "request timeout"),
    ca.RateLimitError(429, "slow down"),
    ca.ServerError(500, "oops"),
    ca.ServerError(502, "bad gateway"),
    ca.ServerError(503, "unavailable"),
    ca.ServerError(504, "gateway timeout"),
]
REFUSALS: list[ca.ChuiziError] = [
    ca.InvalidRequest("bad"),
    ca.BadRequestError(400, "bad"),
    ca.AuthenticationError(401, "no key"),
    ca.InsufficientBalanceError(402, "top up"),
    ca.PermissionDeniedError(403, "not this model"),
    ca.NotFoundError(404, "no such model"),
    ca.APIError(409, "conflict"),
]


def _ids(error: ca.ChuiziError) -> str:
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__}{status or ''}"


@pytest.mark.parametrize("mode", ["idempotent", "safe"])
@pytest.mark.parametrize("error", NOTHING_SENT + RETRYABLE_ANSWERS, ids=_ids)
def test_a_submission_goes_again_when_nothing_can_have_been_created(
    error: ca.ChuiziError, mode: RetrySubmissions
) -> None:
    assert should_retry_submission(error, mode) is True
    assert submission_uncertain(error) is False


@pytest.mark.parametrize("error", WENT_OUT_NO_ANSWER, ids=_ids)
def test_a_submission_without_an_answer_goes_again_only_in_idempotent_mode(
    error: ca.ChuiziError,
) -> None:
    assert should_retry_submission(error, "idempotent") is True
    assert should_retry_submission(error, "safe") is False
    assert submission_uncertain(error) is True


@pytest.mark.parametrize("mode", ["idempotent", "safe"])
@pytest.mark.parametrize("error", REFUSALS, ids=_ids)
def test_a_refused_submission_never_goes_again(
    error: ca.ChuiziError, mode: RetrySubmissions
) -> None:
    assert should_retry_submission(error, mode) is False
    assert submission_uncertain(error) is False


@pytest.mark.parametrize("status", [501, 520, 524, 599])
def test_an_undocumented_5xx_goes_again_only_in_idempotent_mode(status: int) -> None:
    error = ca.ServerError(status, "not in the provider's table")
    assert should_retry_submission(error, "idempotent") is True
    assert should_retry_submission(error, "safe") is False


def test_idempotent_mode_retries_a_submission_like_any_request() -> None:
    for error in NOTHING_SENT + WENT_OUT_NO_ANSWER + RETRYABLE_ANSWERS + REFUSALS:
        expected = (
            should_retry(error.status_code)
            if isinstance(error, ca.APIError)
            else is_retryable(error)
        )
        assert should_retry_submission(error, "idempotent") is expected, error


def test_a_call_stops_at_its_third_timeout_whatever_else_failed() -> None:
    timeout, reset = ca.APITimeoutError("silent"), ca.APIConnectionError("reset")
    assert not silent_too_often(timeout, MAX_TIMEOUTS - 1)
    assert silent_too_often(timeout, MAX_TIMEOUTS)
    assert silent_too_often(ca.APIConnectTimeout("no connection"), MAX_TIMEOUTS)
    assert not silent_too_often(reset, MAX_TIMEOUTS)  # an answer of sorts: max_retries rules


@pytest.mark.parametrize(
    ("refused_for", "time_scale", "waited"),
    [
        (0.0, 1.0, True),  # the first 429 of a call
        (RATE_LIMIT_PATIENCE - 1.0, 1.0, True),
        (RATE_LIMIT_PATIENCE, 1.0, False),  # five minutes of 429s: now it counts
        (RATE_LIMIT_PATIENCE / 100 - 0.01, 100.0, True),  # a clock 100 times faster
        (RATE_LIMIT_PATIENCE / 100, 100.0, False),
    ],
)
def test_429s_are_waited_out_for_five_documented_windows(
    refused_for: float, time_scale: float, waited: bool
) -> None:
    assert RATE_LIMIT_PATIENCE == 300.0
    assert waits_out(refused_for, time_scale) is waited
