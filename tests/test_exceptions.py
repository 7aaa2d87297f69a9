"""The error hierarchy, the status table and what every error carries."""

from __future__ import annotations

import pickle

import pytest

import chuizi_async as ca
from chuizi_async._error_rules import (
    is_final_error,
    is_final_refusal,
    is_retryable,
    is_transient,
    outcome_status,
    stops_batch,
    stops_model,
    submission_uncertain,
)
from chuizi_async._exceptions import error_for_status

ALL_ERRORS: list[type[ca.ChuiziError]] = [
    ca.InvalidRequest,
    ca.APIError,
    ca.BadRequestError,
    ca.AuthenticationError,
    ca.InsufficientBalanceError,
    ca.PermissionDeniedError,
    ca.NotFoundError,
    ca.RateLimitError,
    ca.ServerError,
    ca.APIConnectionError,
    ca.APIConnectError,
    ca.APIConnectTimeout,
    ca.APITimeoutError,
    ca.ResponseFormatError,
    ca.GenerationError,
    ca.GenerationFailed,
    ca.UnusableVideo,
    ca.UnreadableVideo,
    ca.GenerationTimeout,
    ca.GenerationCancelled,
    ca.ClientClosed,
    ca.SubmissionUncertain,
]

STATUS_TABLE: list[tuple[int, type[ca.APIError]]] = [
    (400, ca.BadRequestError),
    (401, ca.AuthenticationError),
    (402, ca.InsufficientBalanceError),
    (403, ca.PermissionDeniedError),
    (404, ca.NotFoundError),
    (422, ca.BadRequestError),
    (429, ca.RateLimitError),
    (500, ca.ServerError),
    (502, ca.ServerError),
    (503, ca.ServerError),
    (504, ca.ServerError),
    (418, ca.APIError),
]
STATUS_IDS = [str(status) for status, _ in STATUS_TABLE]


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_is_a_chuizi_error(cls: type[ca.ChuiziError]) -> None:
    assert issubclass(cls, ca.ChuiziError)
    assert issubclass(cls, Exception)


def test_invalid_request_is_a_value_error() -> None:
    assert issubclass(ca.InvalidRequest, ValueError)
    with pytest.raises(ValueError, match="bad"):
        raise ca.InvalidRequest("bad")


@pytest.mark.parametrize("cls", [ca.APITimeoutError, ca.GenerationTimeout])
def test_timeouts_are_builtin_timeout_errors(cls: type[ca.ChuiziError]) -> None:
    assert issubclass(cls, TimeoutError)


def test_api_timeout_is_a_connection_error_and_generation_timeout_a_generation_error() -> None:
    assert issubclass(ca.APITimeoutError, ca.APIConnectionError)
    assert issubclass(ca.ResponseFormatError, ca.APIConnectionError)
    assert issubclass(ca.GenerationTimeout, ca.GenerationError)


@pytest.mark.parametrize(
    "cls",
    [
        ca.BadRequestError,
        ca.AuthenticationError,
        ca.InsufficientBalanceError,
        ca.PermissionDeniedError,
        ca.NotFoundError,
        ca.RateLimitError,
        ca.ServerError,
    ],
)
def test_status_errors_are_api_errors(cls: type[ca.APIError]) -> None:
    assert issubclass(cls, ca.APIError)
    assert not issubclass(cls, ca.APIConnectionError)


@pytest.mark.parametrize(
    "cls", [ca.GenerationFailed, ca.GenerationTimeout, ca.GenerationCancelled, ca.ClientClosed]
)
def test_generation_outcomes_are_generation_errors(cls: type[ca.GenerationError]) -> None:
    assert issubclass(cls, ca.GenerationError)
    assert not issubclass(cls, ca.APIError)


def test_a_done_generation_without_a_usable_video_is_a_failed_generation() -> None:
    assert issubclass(ca.UnreadableVideo, ca.UnusableVideo)
    assert issubclass(ca.UnusableVideo, ca.GenerationFailed)
    assert not issubclass(ca.UnusableVideo, ca.APIConnectionError)  # final, not transient


def test_non_timeouts_are_not_timeout_errors() -> None:
    for cls in (ca.APIConnectionError, ca.ServerError, ca.GenerationFailed, ca.RateLimitError):
        assert not issubclass(cls, TimeoutError)


@pytest.mark.parametrize(
    ("status", "expected"), STATUS_TABLE, ids=[str(s) for s, _ in STATUS_TABLE]
)
def test_error_for_status_picks_the_class_of_the_status(
    status: int, expected: type[ca.APIError]
) -> None:
    error = error_for_status(status, "something broke", "some_type", code="some_code")
    assert type(error) is expected
    assert error.status_code == status
    assert error.message == "something broke"
    assert error.error_type == "some_type"
    assert error.code == "some_code"
    assert str(error) == f"{status}: something broke"


def test_error_for_status_of_an_unlisted_5xx_is_a_server_error() -> None:
    assert type(error_for_status(599, "odd")) is ca.ServerError


def test_error_for_status_defaults_type_and_code_to_none() -> None:
    error = error_for_status(402, "top up")
    assert error.error_type is None
    assert error.code is None
    assert error.request_id is None


def test_api_error_without_status_has_the_bare_message() -> None:
    assert str(ca.APIError(0, "no status")) == "no status"


def test_generation_errors_carry_the_generation_id() -> None:
    failed = ca.GenerationFailed("gen-abc", "Content policy violation", "invalid_request_error")
    assert failed.generation_id == "gen-abc"
    assert failed.message == "Content policy violation"
    assert failed.error_type == "invalid_request_error"
    assert str(failed) == "gen-abc: Content policy violation"


@pytest.mark.parametrize("cls", [ca.GenerationTimeout, ca.GenerationCancelled, ca.ClientClosed])
def test_generation_outcomes_have_a_default_message(cls: type[ca.GenerationError]) -> None:
    error = cls("gen-1")  # type: ignore[call-arg]
    assert error.generation_id == "gen-1"
    assert error.message
    assert str(error).startswith("gen-1: ")


def test_generation_error_without_id_has_the_bare_message() -> None:
    error = ca.GenerationError(None, "lost")
    assert error.generation_id is None
    assert str(error) == "lost"


def roundtrip(error: ca.ChuiziError) -> ca.ChuiziError:
    result = pickle.loads(pickle.dumps(error))
    assert isinstance(result, ca.ChuiziError)
    return result


@pytest.mark.parametrize(
    ("status", "expected"), STATUS_TABLE, ids=[str(s) for s, _ in STATUS_TABLE]
)
def test_api_errors_pickle_with_class_status_message_and_type(
    status: int, expected: type[ca.APIError]
) -> None:
    error = error_for_status(status, "broke", "server_error")
    copy = roundtrip(error)
    assert type(copy) is expected
    assert isinstance(copy, ca.APIError)
    assert (copy.status_code, copy.message, copy.error_type) == (status, "broke", "server_error")
    assert str(copy) == str(error)


def test_api_error_pickle_keeps_code_and_request_id() -> None:
    error = ca.RateLimitError(
        429, "slow down", "rate_limit_error", code="rate_limit_exceeded", request_id="req-1"
    )
    copy = roundtrip(error)
    assert isinstance(copy, ca.RateLimitError)
    assert copy.code == "rate_limit_exceeded"
    assert copy.request_id == "req-1"


@pytest.mark.parametrize(
    "error",
    [
        ca.GenerationFailed("gen-1", "Content policy violation", "invalid_request_error"),
        ca.GenerationTimeout("gen-2"),
        ca.GenerationTimeout("gen-2", "gave up after 3600 s"),
        ca.GenerationCancelled("gen-3"),
        ca.ClientClosed("gen-4"),
        ca.GenerationError(None, "no id"),
        ca.UnusableVideo("gen-5", "not http", excerpt='{"status":"completed"}'),
        ca.UnreadableVideo("gen-6", "no video URL", excerpt='{"status":"succeeded"}'),
    ],
    ids=lambda e: type(e).__name__,
)
def test_generation_errors_pickle_round_trip(error: ca.GenerationError) -> None:
    copy = roundtrip(error)
    assert type(copy) is type(error)
    assert isinstance(copy, ca.GenerationError)
    assert copy.generation_id == error.generation_id
    assert copy.message == error.message
    assert str(copy) == str(error)
    assert getattr(copy, "error_type", None) == getattr(error, "error_type", None)
    assert getattr(copy, "excerpt", None) == getattr(error, "excerpt", None)


@pytest.mark.parametrize(
    "error",
    [
        ca.ChuiziError("root"),
        ca.InvalidRequest("bad duration"),
        ca.APIConnectionError("refused"),
        ca.APIConnectError("refused"),
        ca.APIConnectTimeout("no pooled connection"),
        ca.APITimeoutError("slow"),
        ca.ResponseFormatError("html"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_plain_errors_pickle_round_trip(error: ca.ChuiziError) -> None:
    copy = roundtrip(error)
    assert type(copy) is type(error)
    assert copy.args == error.args


def test_a_connect_error_is_caught_as_a_connection_error_and_a_connect_timeout_as_a_timeout() -> (
    None
):
    assert issubclass(ca.APIConnectError, ca.APIConnectionError)
    assert issubclass(ca.APIConnectTimeout, ca.APIConnectError)
    assert issubclass(ca.APIConnectTimeout, ca.APITimeoutError)
    assert issubclass(ca.APIConnectTimeout, TimeoutError)
    assert not issubclass(ca.APIConnectError, TimeoutError)


def test_submission_uncertain_names_its_key_and_how_to_check() -> None:
    request = ca.GenerationRequest("google/veo-3.1-fast", "a cat")
    error = ca.SubmissionUncertain("chuizi-0123", request, reason="connection reset")
    assert isinstance(error, ca.GenerationError)
    assert error.generation_id is None
    assert error.idempotency_key == "chuizi-0123"
    assert error.request is request
    text = str(error)
    assert "may or may not have created" in text
    assert "chuizi-0123" in text and "connection reset" in text
    assert "usage" in text


def test_submission_uncertain_pickles_with_its_key_and_request() -> None:
    request = ca.GenerationRequest("google/veo-3.1-fast", "a cat", duration=5)
    copy = roundtrip(ca.SubmissionUncertain("chuizi-0123", request))
    assert type(copy) is ca.SubmissionUncertain
    assert copy.idempotency_key == "chuizi-0123"
    assert copy.request is not None and copy.request.prompt == "a cat"
    assert str(copy) == str(ca.SubmissionUncertain("chuizi-0123", request))


# -- error_type: one vocabulary --------------------------------------------------------------


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of an exported error class, as the library would raise it (no server type)."""
    if issubclass(cls, ca.APIError):
        return cls(418 if cls is ca.APIError else 0, "refused")
    if issubclass(cls, ca.SubmissionUncertain):
        return cls("chuizi-key")
    if issubclass(cls, ca.GenerationError):
        return cls(None, "failed")
    return cls("message")


EXPORTED_ERRORS = [
    value
    for name in ca.__all__
    if isinstance(value := getattr(ca, name), type) and issubclass(value, BaseException)
]
EXPECTED_TYPES = {
    ca.ChuiziError: "error",
    ca.InvalidRequest: "invalid_request_error",
    ca.APIError: "api_error",
    ca.BadRequestError: "invalid_request_error",
    ca.AuthenticationError: "authentication_error",
    ca.InsufficientBalanceError: "insufficient_quota",
    ca.PermissionDeniedError: "permission_error",
    ca.NotFoundError: "not_found",
    ca.RateLimitError: "rate_limit_error",
    ca.ServerError: "server_error",
    ca.APIConnectionError: "connection_error",
    ca.APIConnectError: "connection_error",
    ca.APIConnectTimeout: "connection_error",  # no connection was made
    ca.APITimeoutError: "timeout",
    ca.ResponseFormatError: "invalid_response",
    ca.GenerationError: "generation_failed",
    ca.GenerationFailed: "generation_failed",
    ca.UnusableVideo: "unusable_video_url",
    ca.UnreadableVideo: "no_video_url",
    ca.GenerationTimeout: "generation_timeout",
    ca.GenerationCancelled: "cancelled",
    ca.ClientClosed: "client_closed",
    ca.SubmissionUncertain: "submission_uncertain",
    ca.NotSubmitted: "not_submitted",
    ca.CostLimitExceeded: "max_cost",
}


def test_every_exported_error_class_has_its_documented_type() -> None:
    assert set(EXPORTED_ERRORS) == set(EXPECTED_TYPES)
    got = {cls: ca.error_type(_instance(cls)) for cls in EXPORTED_ERRORS}
    assert got == EXPECTED_TYPES


def test_the_readme_lists_every_error_type() -> None:
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Error types") :]
    missing = [word for word in set(EXPECTED_TYPES.values()) if f"`{word}`" not in section]
    assert missing == []
    assert "`file_error`" in section


def test_error_type_is_the_servers_where_it_gave_one() -> None:
    content_policy = ca.GenerationFailed(
        "gen-1", "Content policy violation", "invalid_request_error"
    )
    assert ca.error_type(content_policy) == "invalid_request_error"
    assert ca.error_type(error_for_status(404, "no such model", "not_found")) == "not_found"
    assert ca.error_type(error_for_status(503, "busy", "service_unavailable")) == (
        "service_unavailable"
    )
    assert ca.error_type(error_for_status(404, "<html>", None)) == "not_found"
    assert ca.error_type(error_for_status(502, "Bad Gateway", "")) == "server_error"
    assert ca.error_type(OSError("disk full")) == "file_error"
    assert ca.error_type(KeyError("x")) == "error"


# -- what an error means: every rule over every error class ----------------------------------

MODEL = "acme/video-1"


def _raised(cls: type[ca.ChuiziError]) -> ca.ChuiziError:
    """An instance of ``cls`` as the library raises it, an error status its own."""
    statuses: dict[type[BaseException], int] = {
        ca.APIError: 418,
        ca.BadRequestError: 400,
        ca.AuthenticationError: 401,
        ca.InsufficientBalanceError: 402,
        ca.PermissionDeniedError: 403,
        ca.NotFoundError: 404,
        ca.RateLimitError: 429,
        ca.ServerError: 503,
    }
    if issubclass(cls, ca.APIError):
        return cls(statuses[cls], "refused")
    if issubclass(cls, ca.SubmissionUncertain):
        return cls("chuizi-key")
    if issubclass(cls, ca.GenerationError):
        return cls("gen-1", "failed")
    return cls("message")


# (retryable, uncertain, transient, final refusal, final error, stops batch, stops model, CLI)
RULES: dict[type[BaseException], tuple[bool, bool, bool, bool, bool, bool, bool, str]] = {
    ca.ChuiziError: (False, False, False, False, False, False, False, "failed"),
    ca.InvalidRequest: (False, False, False, False, False, False, False, "invalid"),
    ca.APIError: (False, False, False, False, False, False, False, "failed"),
    ca.BadRequestError: (False, False, False, True, False, False, False, "invalid"),
    ca.AuthenticationError: (False, False, False, False, False, False, False, "failed"),
    ca.InsufficientBalanceError: (False, False, False, False, False, True, False, "not_submitted"),
    ca.PermissionDeniedError: (False, False, False, False, False, False, True, "failed"),
    ca.NotFoundError: (False, False, False, False, True, False, False, "failed"),
    ca.RateLimitError: (False, False, True, False, False, False, False, "failed"),
    ca.ServerError: (False, False, True, False, False, False, False, "failed"),
    ca.APIConnectionError: (True, True, True, False, False, False, False, "failed"),
    ca.APIConnectError: (True, False, True, False, False, False, False, "failed"),
    ca.APIConnectTimeout: (True, False, True, False, False, False, False, "failed"),
    ca.APITimeoutError: (True, True, True, False, False, False, False, "failed"),
    ca.ResponseFormatError: (True, True, True, False, False, False, False, "failed"),
    ca.GenerationError: (False, False, False, False, False, False, False, "failed"),
    ca.GenerationFailed: (False, False, False, False, True, False, False, "failed"),
    ca.UnusableVideo: (False, False, False, False, False, False, False, "failed"),
    ca.UnreadableVideo: (False, False, False, False, False, False, False, "failed"),
    ca.GenerationTimeout: (False, False, False, False, False, False, False, "failed"),
    ca.GenerationCancelled: (False, False, False, False, False, False, False, "failed"),
    ca.ClientClosed: (False, False, False, False, False, False, False, "failed"),
    ca.SubmissionUncertain: (False, False, False, False, False, False, False, "uncertain"),
    ca.NotSubmitted: (False, False, False, False, False, False, False, "not_submitted"),
    ca.CostLimitExceeded: (False, False, False, False, False, False, False, "not_submitted"),
}


def test_the_rules_table_covers_every_exported_error_class() -> None:
    assert set(RULES) == set(EXPORTED_ERRORS)


@pytest.mark.parametrize("cls", list(RULES), ids=lambda c: c.__name__)
def test_what_each_error_class_means(cls: type[ca.ChuiziError]) -> None:
    error = _raised(cls)
    got = (
        is_retryable(error),
        submission_uncertain(error),
        is_transient(error),
        is_final_refusal(error, MODEL),
        is_final_error(error),
        stops_batch(error),
        stops_model(error),
        outcome_status(error, accepted=False),
    )
    assert got == RULES[cls]


def test_errors_that_are_not_the_librarys_mean_nothing_special() -> None:
    for error in [OSError("disk full"), KeyError("x")]:
        assert not is_retryable(error)
        assert not submission_uncertain(error)
        assert not is_final_error(error)
        assert not is_final_refusal(error, MODEL)
        assert outcome_status(error, accepted=False) == "failed"


def test_a_408_is_a_transient_status_check_failure() -> None:
    assert is_transient(error_for_status(408, "request timeout"))
    assert not is_transient(error_for_status(409, "conflict"))


def test_which_refusals_of_a_submission_are_final() -> None:
    model = "acme/no-such-model"
    bad = error_for_status(400, "bad aspect_ratio", "invalid_request_error")
    assert is_final_refusal(bad, model)
    assert is_final_refusal(error_for_status(422, "unprocessable"), model)
    unknown = error_for_status(404, "The model was not found", "not_found", code="model_not_found")
    assert is_final_refusal(unknown, model)
    assert is_final_refusal(error_for_status(404, f"no model {model}", "not_found"), model)
    # a 404 that names no model may be a wrong base URL: sent again once it is fixed
    assert not is_final_refusal(error_for_status(404, "Not Found", None), model)
    for status, code in [(401, None), (402, None), (403, "daily_limit_exceeded"), (403, None)]:
        assert not is_final_refusal(error_for_status(status, "no", code=code), model)
    assert not is_final_refusal(error_for_status(429, "slow down"), model)
    assert not is_final_refusal(error_for_status(503, "busy"), model)
    assert not is_final_refusal(ca.APIConnectError("could not connect"), model)
    assert ca.Journal.is_final_refusal is is_final_refusal  # the journal follows the same rule


def test_a_generation_failed_remotely_or_unknown_is_final_for_a_journal() -> None:
    assert is_final_error(ca.GenerationFailed("gen-1", "content policy"))
    assert is_final_error(ca.NotFoundError(404, "no such generation"))
    # the video was made and paid for: the next run reads it again
    assert not is_final_error(ca.UnreadableVideo("gen-1", "no url"))
    # local outcomes: the generation may still finish
    for error in [ca.GenerationTimeout("gen-1"), ca.GenerationCancelled("gen-1")]:
        assert not is_final_error(error)
    assert ca.Journal.is_final_error is is_final_error


@pytest.mark.parametrize(
    ("error", "batch", "model"),
    [
        (ca.InsufficientBalanceError(402, "top up", "insufficient_quota"), True, False),
        (
            ca.PermissionDeniedError(403, "cap", "permission_error", code="daily_limit_exceeded"),
            True,
            False,
        ),
        (ca.PermissionDeniedError(403, "cap", "daily_limit_exceeded"), True, False),
        (
            ca.PermissionDeniedError(403, "no", "permission_error", code="model_not_allowed"),
            False,
            True,
        ),
        (ca.PermissionDeniedError(403, "no", "permission_error", code="403"), False, True),
        (ca.BadRequestError(400, "bad"), False, False),
        (ca.NotFoundError(404, "unknown model", code="model_not_found"), False, False),
        (ca.ServerError(500, "oops"), False, False),
    ],
)
def test_which_refusals_stop_the_batch_or_the_model(
    error: ca.APIError, batch: bool, model: bool
) -> None:
    assert (stops_batch(error), stops_model(error)) == (batch, model)


def test_the_cli_names_an_outcome_by_whether_the_server_accepted_the_request() -> None:
    assert outcome_status(None, accepted=True) == "completed"
    balance = ca.InsufficientBalanceError(402, "top up")
    assert outcome_status(balance, accepted=False) == "not_submitted"  # send it again later
    assert outcome_status(ca.BadRequestError(400, "bad"), accepted=False) == "invalid"
    # once accepted, a refusal of a later check is the generation's failure
    assert outcome_status(ca.BadRequestError(400, "bad"), accepted=True) == "failed"
    assert outcome_status(ca.InvalidRequest("bad"), accepted=True) == "failed"
    assert outcome_status(ca.NotSubmitted("stopped"), accepted=True) == "not_submitted"
    assert outcome_status(ca.SubmissionUncertain("k"), accepted=False) == "uncertain"


def test_a_route_that_answers_no_status_raises_an_api_error_of_status_200() -> None:
    from chuizi_async._exceptions import no_status_answer

    error = no_status_answer("no status here")
    assert type(error) is ca.APIError
    assert (error.status_code, error.message) == (200, "no status here")
    assert str(error) == "200: no status here"
    assert ca.error_type(error) == "api_error"
