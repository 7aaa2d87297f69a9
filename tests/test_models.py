"""Parsing server answers (``_models``): both documented dialects, envelopes, and any JSON."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chuizi_async as ca
from chuizi_async._parsing import (
    _WEB_URL,
    WrongRoute,
    is_web_url,
    parse_check,
    parse_key_info,
    parse_models,
    parse_status,
    parse_submission,
    status_of,
)

GEN_ID = "gen-0123456789abcdef"
VIDEO_URL = f"https://media.chuizi.ai/videos/{GEN_ID}.mp4"

GUIDE_PROCESSING = {"id": GEN_ID, "status": "processing", "created": 1712000000}
GUIDE_COMPLETED = {
    "id": GEN_ID,
    "status": "completed",
    "created": 1712000000,
    "output": {"video_url": VIDEO_URL},
    "usage": {"duration_seconds": 5},
    "x_chuizi": {"generation_id": GEN_ID, "cost": "0.15000000", "latency_ms": 45000},
}
GUIDE_FAILED = {
    "id": GEN_ID,
    "status": "failed",
    "error": {"message": "Content policy violation", "type": "invalid_request_error"},
}
BILLING_RECORD = {
    "data": {
        "id": GEN_ID,
        "model": "google/veo-3.1",
        "cost": "0.15000000",
        "latency_ms": 45000,
        "created_at": "2024-04-01T12:00:00Z",
    }
}


# -- parse_status ------------------------------------------------------------------------------


def test_guide_processing_is_pending() -> None:
    status = parse_status(GUIDE_PROCESSING, requested_id=GEN_ID)
    assert status.id == GEN_ID
    assert status.status == "processing"
    assert status.state == "pending"
    assert not status.done
    assert status.created == 1712000000
    assert status.video is None
    assert status.error is None


def test_guide_completed_carries_the_video() -> None:
    status = parse_status(GUIDE_COMPLETED, requested_id=GEN_ID)
    assert status.state == "completed"
    assert status.done
    video = status.video
    assert video is not None
    assert video.id == GEN_ID
    assert video.url == VIDEO_URL
    assert video.duration_seconds == 5
    assert video.latency_ms == 45000
    assert video.created == 1712000000
    assert status.error is None


def test_cost_is_an_exact_decimal_never_a_float() -> None:
    video = parse_status(GUIDE_COMPLETED, requested_id=GEN_ID).video
    assert video is not None
    assert isinstance(video.cost, Decimal)
    assert video.cost == Decimal("0.15000000")
    assert str(video.cost) == "0.15000000"


def test_cost_given_as_a_json_number_becomes_its_decimal() -> None:
    body = {**GUIDE_COMPLETED, "x_chuizi": {"cost": 0.15}}
    video = parse_status(body, requested_id=GEN_ID).video
    assert video is not None
    assert video.cost == Decimal("0.15")


@pytest.mark.parametrize("cost", ["free", "NaN", "Infinity", True, [1], {"usd": 1}])
def test_unreadable_cost_is_none(cost: object) -> None:
    body = {**GUIDE_COMPLETED, "x_chuizi": {"cost": cost}}
    video = parse_status(body, requested_id=GEN_ID).video
    assert video is not None
    assert video.cost is None


def test_guide_failed_carries_the_error() -> None:
    status = parse_status(GUIDE_FAILED, requested_id=GEN_ID)
    assert status.state == "failed"
    assert status.done
    assert status.video is None
    assert status.error == ca.ErrorInfo("Content policy violation", "invalid_request_error")


def test_failed_with_a_string_error_keeps_the_message() -> None:
    status = parse_status({"status": "failed", "error": "upstream exploded"}, requested_id=GEN_ID)
    assert status.error == ca.ErrorInfo("upstream exploded", None)


def test_failed_without_an_error_has_a_generic_message() -> None:
    status = parse_status({"status": "failed"}, requested_id=GEN_ID)
    assert status.error is not None
    assert status.error.message == "generation failed"


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("succeeded", "completed"),
        ("completed", "completed"),
        ("queued", "pending"),
        ("pending", "pending"),
        ("processing", "pending"),
        ("in_progress", "pending"),
        ("failed", "failed"),
        ("SUCCEEDED", "completed"),
        ("Processing", "pending"),
    ],
)
def test_both_status_vocabularies_are_understood(word: str, state: str) -> None:
    body: dict[str, Any] = {"id": GEN_ID, "status": word, "output": {"video_url": VIDEO_URL}}
    status = parse_status(body, requested_id=GEN_ID)
    assert status.state == state
    assert status.status == word


def test_reference_succeeded_with_top_level_video_url() -> None:
    body = {"id": GEN_ID, "status": "succeeded", "model": "qwen/wan2.7-t2v", "video_url": VIDEO_URL}
    status = parse_status(body, requested_id=GEN_ID)
    assert status.video is not None
    assert status.video.url == VIDEO_URL
    assert status.video.model == "qwen/wan2.7-t2v"


def test_data_envelope_is_unwrapped() -> None:
    status = parse_status({"data": GUIDE_COMPLETED}, requested_id=GEN_ID)
    assert status.state == "completed"
    assert status.video is not None
    assert status.video.url == VIDEO_URL
    assert status.raw["id"] == GEN_ID


def test_billing_record_without_status_is_the_wrong_route() -> None:
    with pytest.raises(WrongRoute, match=GEN_ID):
        parse_status(BILLING_RECORD, requested_id=GEN_ID)


@pytest.mark.parametrize("body", [{}, {"id": GEN_ID}, {"status": ""}, {"status": 3}])
def test_answer_without_a_status_word_is_the_wrong_route(body: dict[str, Any]) -> None:
    with pytest.raises(WrongRoute):
        parse_status(body, requested_id=GEN_ID)


@pytest.mark.parametrize("raw", [None, [], "processing", 42])
def test_answer_that_is_not_an_object_is_a_format_error(raw: object) -> None:
    with pytest.raises(ca.ResponseFormatError):
        parse_status(raw, requested_id=GEN_ID)


DONE = {"id": GEN_ID, "status": "succeeded", "created": 1712000000}


@pytest.mark.parametrize(
    "body",
    [
        {**DONE, "output": {"video_url": VIDEO_URL}},
        {**DONE, "output": {"url": VIDEO_URL}},
        {**DONE, "video_url": VIDEO_URL},
        {**DONE, "url": VIDEO_URL},
        {"data": {**DONE, "output": {"video_url": VIDEO_URL}}},
        {"data": {**DONE, "url": VIDEO_URL}},
        {**DONE, "data": {"video_url": VIDEO_URL}},
        {**DONE, "data": {"url": VIDEO_URL}},
        {**DONE, "output": {"videos": [{"url": VIDEO_URL}, {"url": "https://x/second.mp4"}]}},
        {**DONE, "output": {"videos": [VIDEO_URL]}},
        {**DONE, "output": [{"video_url": VIDEO_URL}]},
        {**DONE, "videos": [{"url": VIDEO_URL}]},
        {**DONE, "videos": [{"video_url": VIDEO_URL}]},
        {**DONE, "data": [{"url": VIDEO_URL}]},
        {"data": {**DONE, "data": [{"url": VIDEO_URL}]}},
    ],
    ids=lambda body: str(body)[:70],
)
def test_the_video_url_is_read_from_every_documented_place(body: dict[str, Any]) -> None:
    video = parse_status(body, requested_id=GEN_ID).video
    assert video is not None
    assert video.url == VIDEO_URL


def test_the_guides_place_wins_over_the_others() -> None:
    body = {**DONE, "url": "https://x/page.html", "output": {"video_url": VIDEO_URL}}
    video = parse_status(body, requested_id=GEN_ID).video
    assert video is not None and video.url == VIDEO_URL


@pytest.mark.parametrize(
    "body",
    [
        {**DONE},
        {**DONE, "result": {"media": {"src": VIDEO_URL}}},
        {**DONE, "output": {"thumbnail_url": VIDEO_URL}},
        {**DONE, "output": {"video": {"href": VIDEO_URL}}},
        {**DONE, "videos": []},
        {**DONE, "output": {"videos": [42]}},
    ],
    ids=["nothing", "result.media.src", "thumbnail", "output.video.href", "empty", "number"],
)
def test_done_without_a_video_url_where_the_documents_put_it_is_unreadable(
    body: dict[str, Any],
) -> None:
    with pytest.raises(ca.UnreadableVideo, match=GEN_ID) as info:
        parse_status(body, requested_id=GEN_ID)
    error = info.value
    assert isinstance(error, ca.UnusableVideo)
    assert isinstance(error, ca.GenerationFailed)
    assert error.generation_id == GEN_ID
    assert error.error_type == "no_video_url"
    assert error.excerpt.startswith('{"id":"gen-0123456789abcdef","status":"succeeded"')
    assert error.excerpt in str(error)
    assert "'succeeded'" in str(error)


def test_the_excerpt_of_an_unreadable_answer_is_short_and_shows_no_key() -> None:
    key = "ck-" + "A1b2" * 8
    body = {
        "status": "completed",
        "echo": {"headers": {"Authorization": f"Bearer {key}", "x-api-key": key}},
        "padding": "p" * 1000,
    }
    with pytest.raises(ca.UnreadableVideo) as info:
        parse_status(body, requested_id=GEN_ID)
    message = str(info.value)
    assert key not in message
    assert key[:12] not in message
    assert "ck-***" in message
    assert len(info.value.excerpt) <= 210
    assert len(message) < 600


@pytest.mark.parametrize(
    "url",
    [
        "https://media.chuizi.ai/v.mp4",
        "HTTP://media.chuizi.ai:8080/v.mp4?sig=a%20b",
        "https://user:pw@media.chuizi.ai/v.mp4",
        "https://[2001:db8::1]:443/v.mp4",
        "https://media.chuizi.ai",
    ],
)
def test_a_web_video_url_is_accepted_as_given(url: str) -> None:
    body = {**GUIDE_COMPLETED, "output": {"video_url": url}}
    video = parse_status(body, requested_id=GEN_ID).video
    assert video is not None and video.url == url


@pytest.mark.parametrize(
    "url",
    [
        "https:///v.mp4",
        "https://:443/v.mp4",
        "https://?x",
        "https://media chuizi.ai/v.mp4",
        "https://media\x00.chuizi.ai/v.mp4",
        " https://media.chuizi.ai/v.mp4",
        "ftp://media.chuizi.ai/v.mp4",
        "javascript://media.chuizi.ai/%0aalert(1)",
    ],
)
def test_a_video_url_without_a_web_scheme_and_host_is_unusable(url: str) -> None:
    body = {**GUIDE_COMPLETED, "output": {"video_url": url}}
    with pytest.raises(ca.UnusableVideo, match="not http") as info:
        parse_status(body, requested_id=GEN_ID)
    assert not isinstance(info.value, ca.UnreadableVideo)
    assert info.value.error_type == "unusable_video_url"


def test_a_url_is_judged_as_the_expression_judges_it_once_its_origin_is_known() -> None:
    origins = ["https://media.chuizi.ai", "http://127.0.0.1:8080", "https://u@cdn.example"]
    tails = ["/v.mp4", "/a b.mp4", "/?x", "//x", "/"]
    odd = ["https:///v.mp4", "http:///x", "https://?x/y", "https:// a/b", "ftp://cdn.example/a"]
    urls = [origin + tail for origin in origins for tail in tails] + odd
    for url in urls * 2:  # the second time round, every good origin is known
        assert is_web_url(url) is (_WEB_URL.match(url) is not None), url


@given(
    scheme=st.sampled_from(["https://", "http://", "HTTP://", "ftp://", "https:/"]),
    authority=st.text(alphabet="ab.:@[]? #\x00/", max_size=8),
    tails=st.lists(st.text(alphabet="ab/?# ", max_size=6), min_size=1, max_size=3),
)
def test_urls_of_one_origin_are_judged_alike_before_and_after_it_is_known(
    scheme: str, authority: str, tails: list[str]
) -> None:
    for tail in tails * 2:
        url = f"{scheme}{authority}/{tail}"
        assert is_web_url(url) is (_WEB_URL.match(url) is not None), url


@pytest.mark.parametrize("word", ["completed", "succeeded", "SUCCEEDED"])
@pytest.mark.parametrize("wrapped", [False, True])
def test_a_done_answer_checked_is_its_video_and_its_status_when_asked(
    word: str, wrapped: bool
) -> None:
    body = {**GUIDE_COMPLETED, "status": word}
    raw = {"data": body} if wrapped else body
    video = parse_check(raw, requested_id=GEN_ID)
    assert isinstance(video, ca.Video)
    status = status_of(video)
    assert status == parse_status(raw, requested_id=GEN_ID)
    assert (status.status, status.state, status.video) == (word, "completed", video)
    assert status.raw == body


def test_an_answer_not_done_is_checked_as_its_status() -> None:
    for body in (GUIDE_PROCESSING, {"id": GEN_ID, "status": "failed", "error": "no"}):
        assert parse_check(body, requested_id=GEN_ID) == parse_status(body, requested_id=GEN_ID)


def test_unknown_status_is_pending_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    word = f"rendering-{uuid.uuid4().hex}"
    with caplog.at_level(logging.WARNING, logger="chuizi_async"):
        first = parse_status({"id": GEN_ID, "status": word}, requested_id=GEN_ID)
        second = parse_status({"id": GEN_ID, "status": word}, requested_id=GEN_ID)
    assert first.state == second.state == "pending"
    assert first.status == word
    logged = [r for r in caplog.records if word in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].levelno == logging.WARNING


def test_known_status_words_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="chuizi_async"):
        for word in ("queued", "pending", "processing", "in_progress"):
            parse_status({"status": word}, requested_id=GEN_ID)
    assert caplog.records == []


@pytest.mark.parametrize("length", [1, 16, 24, 40, 200])
def test_ids_of_any_length_are_kept(length: int) -> None:
    gen_id = "gen-" + "a" * length
    status = parse_status({"id": gen_id, "status": "processing"}, requested_id=gen_id)
    assert status.id == gen_id
    submitted, _ = parse_submission({"id": gen_id, "status": "processing"})
    assert submitted == gen_id


def test_missing_id_falls_back_to_the_requested_one() -> None:
    status = parse_status({"status": "processing"}, requested_id="gen-asked")
    assert status.id == "gen-asked"


def test_unknown_fields_are_kept_in_raw() -> None:
    body = {
        **GUIDE_COMPLETED,
        "region": "us-east",
        "output": {"video_url": VIDEO_URL, "thumbnail": "t.jpg"},
    }
    status = parse_status(body, requested_id=GEN_ID)
    assert status.raw["region"] == "us-east"
    assert status.raw["output"]["thumbnail"] == "t.jpg"
    assert status.video is not None
    assert status.video.raw["region"] == "us-east"


# -- parse_submission --------------------------------------------------------------------------


def test_submission_guide_shape() -> None:
    gen_id, body = parse_submission({"id": GEN_ID, "status": "processing", "created": 1712000000})
    assert gen_id == GEN_ID
    assert body["created"] == 1712000000


def test_submission_reference_shape() -> None:
    long_id = "gen-" + "b" * 24
    answer = {
        "id": long_id,
        "status": "processing",
        "created": 1712000000,
        "model": "google/veo-3.1",
        "task_id": "upstream-42",
    }
    gen_id, body = parse_submission(answer)
    assert gen_id == long_id
    assert body["task_id"] == "upstream-42"


def test_submission_x_chuizi_generation_id_shape() -> None:
    gen_id, _ = parse_submission({"status": "processing", "x_chuizi": {"generation_id": GEN_ID}})
    assert gen_id == GEN_ID


def test_submission_in_a_data_envelope() -> None:
    gen_id, _ = parse_submission({"data": {"id": GEN_ID, "status": "processing"}})
    assert gen_id == GEN_ID


@pytest.mark.parametrize(
    "answer",
    [{}, {"status": "processing"}, {"id": ""}, {"id": 12}, {"x_chuizi": {"generation_id": None}}],
)
def test_submission_without_an_id_is_a_format_error(answer: dict[str, Any]) -> None:
    with pytest.raises(ca.ResponseFormatError, match="generation id"):
        parse_submission(answer)


# -- parse_key_info ----------------------------------------------------------------------------


def test_key_info_data_shape() -> None:
    info = parse_key_info(
        {
            "data": {
                "key_prefix": "ck-abcd",
                "name": "production",
                "balance": "42.50000000",
                "rpm_limit": 500,
                "daily_limit": "25.00",
                "allowed_models": ["google/veo-3.1", "bailian/wan2.6-t2v"],
                "is_active": True,
            }
        }
    )
    assert info.balance == Decimal("42.50000000")
    assert str(info.balance) == "42.50000000"
    assert info.rpm_limit == 500
    assert info.daily_limit == Decimal("25.00")
    assert info.daily_requests is None
    assert info.allowed_models == ("google/veo-3.1", "bailian/wan2.6-t2v")
    assert info.raw["name"] == "production"


def test_key_info_data_shape_with_null_limits() -> None:
    info = parse_key_info(
        {"data": {"balance": "1.00000000", "rpm_limit": None, "daily_limit": None}}
    )
    assert info.rpm_limit is None
    assert info.daily_limit is None
    assert info.allowed_models is None


def test_key_info_older_shape() -> None:
    info = parse_key_info(
        {
            "object": "key_info",
            "balance": "42.50",
            "currency": "USD",
            "rate_limit": {"rpm": 60, "daily": 1000},
            "usage_today": {"requests": 12, "cost": "1.20"},
        }
    )
    assert info.balance == Decimal("42.50")
    assert info.currency == "USD"
    assert info.rpm_limit == 60
    assert info.daily_limit is None  # rate_limit.daily counts requests, not dollars
    assert info.daily_requests == 1000
    assert info.raw["usage_today"] == {"requests": 12, "cost": "1.20"}


def test_key_info_not_an_object_is_a_format_error() -> None:
    with pytest.raises(ca.ResponseFormatError):
        parse_key_info(["balance"])


# -- parse_models ------------------------------------------------------------------------------


def test_models_list() -> None:
    models = parse_models(
        {
            "object": "list",
            "data": [
                {
                    "id": "google/veo-3.1-fast",
                    "object": "model",
                    "created": 1712000000,
                    "owned_by": "google",
                    "aliases": ["veo-3.1-fast", 7],
                    "pricing": {"unit": "second", "price": "0.10"},
                    "context": "extra",
                },
                {"object": "model"},
                "junk",
            ],
        }
    )
    assert models == [
        ca.RemoteModel(
            id="google/veo-3.1-fast",
            owned_by="google",
            aliases=("veo-3.1-fast",),
            pricing={"unit": "second", "price": "0.10"},
            created=1712000000,
        )
    ]
    assert models[0].pricing["unit"] == "second"
    assert models[0].raw["context"] == "extra"


def test_models_bare_list_is_accepted() -> None:
    assert [m.id for m in parse_models([{"id": "a"}, {"id": "b"}])] == ["a", "b"]


@pytest.mark.parametrize("raw", [{}, {"data": {"id": "x"}}, None, "models"])
def test_models_without_a_data_list_is_a_format_error(raw: object) -> None:
    with pytest.raises(ca.ResponseFormatError):
        parse_models(raw)


# -- GenerationRequest.coerce ------------------------------------------------------------------


def test_coerce_builds_a_request_from_a_mapping() -> None:
    request = ca.GenerationRequest.coerce(
        {"model": "google/veo-3.1", "prompt": "a cat", "duration": 5, "reference_images": ["u"]}
    )
    assert request.model == "google/veo-3.1"
    assert request.prompt == "a cat"
    assert request.duration == 5
    assert request.reference_images == ("u",)


def test_coerce_returns_a_request_unchanged() -> None:
    request = ca.GenerationRequest("google/veo-3.1", "a cat")
    assert ca.GenerationRequest.coerce(request) is request


def test_coerce_names_the_unknown_field() -> None:
    with pytest.raises(ca.InvalidRequest, match="'durration'") as info:
        ca.GenerationRequest.coerce({"model": "m", "prompt": "p", "durration": 5})
    assert "extra_body" in str(info.value)


@pytest.mark.parametrize(
    ("value", "missing"),
    [({"prompt": "p"}, "model"), ({"model": "m"}, "prompt"), ({}, "model and prompt")],
)
def test_coerce_names_what_is_missing(value: dict[str, Any], missing: str) -> None:
    with pytest.raises(ca.InvalidRequest, match=missing):
        ca.GenerationRequest.coerce(value)


def test_coerce_refuses_what_is_not_a_mapping() -> None:
    with pytest.raises(ca.InvalidRequest, match="list"):
        ca.GenerationRequest.coerce(["m", "p"])  # type: ignore[arg-type]


def test_single_reference_image_becomes_a_tuple() -> None:
    request = ca.GenerationRequest("m", "p", reference_images="u")
    assert request.reference_images == ("u",)


# -- any JSON in: a value or our error out -----------------------------------------------------

KEYS = [
    "status",
    "output",
    "x_chuizi",
    "error",
    "data",
    "id",
    "video_url",
    "url",
    "usage",
    "duration_seconds",
    "duration",
    "cost",
    "latency_ms",
    "created",
    "model",
    "message",
    "type",
    "generation_id",
    "balance",
    "rpm_limit",
    "daily_limit",
    "allowed_models",
    "currency",
    "rate_limit",
    "rpm",
    "daily",
    "aliases",
    "pricing",
    "owned_by",
]
WORDS = [
    "processing",
    "completed",
    "succeeded",
    "failed",
    "queued",
    "pending",
    "in_progress",
    "0.15000000",
    "1e400",
    "-1",
    "nan",
    "Infinity",
    "sNaN",
    VIDEO_URL,
    GEN_ID,
    "",
]

# Integers stay within 64 bits here: larger ones are covered by the explicit test below.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(WORDS)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
shaped = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=6)
    ),
    max_leaves=30,
)
anything = json_values | shaped


@settings(max_examples=250, deadline=None)
@given(anything)
def test_parse_status_never_fails_with_a_builtin_error(raw: object) -> None:
    try:
        status = parse_status(raw, requested_id=GEN_ID)
    except (ca.ChuiziError, WrongRoute):
        return
    assert status.state in ("pending", "completed", "failed")
    assert isinstance(status.id, str)
    assert (status.video is not None) == (status.state == "completed")


@settings(max_examples=250, deadline=None)
@given(anything)
def test_parse_submission_never_fails_with_a_builtin_error(raw: object) -> None:
    try:
        gen_id, body = parse_submission(raw)
    except ca.ChuiziError:
        return
    assert isinstance(gen_id, str)
    assert gen_id
    assert isinstance(body, dict)


@settings(max_examples=250, deadline=None)
@given(anything)
def test_parse_key_info_never_fails_with_a_builtin_error(raw: object) -> None:
    try:
        info = parse_key_info(raw)
    except ca.ChuiziError:
        return
    assert info.balance is None or (isinstance(info.balance, Decimal) and info.balance.is_finite())


@settings(max_examples=250, deadline=None)
@given(anything)
def test_parse_models_never_fails_with_a_builtin_error(raw: object) -> None:
    try:
        models = parse_models(raw)
    except ca.ChuiziError:
        return
    assert all(isinstance(m.id, str) and m.id for m in models)


def test_huge_integer_duration_is_not_a_builtin_error() -> None:
    body = {**GUIDE_COMPLETED, "usage": {"duration_seconds": 10**400}}
    status = parse_status(body, requested_id=GEN_ID)
    assert status.video is not None
    assert status.video.duration_seconds is None


def test_huge_integers_elsewhere_are_tolerated() -> None:
    huge = 10**400
    body = {**GUIDE_COMPLETED, "created": huge, "x_chuizi": {"cost": huge, "latency_ms": huge}}
    video = parse_status(body, requested_id=GEN_ID).video
    assert video is not None
    assert video.cost == Decimal(huge)
    info = parse_key_info({"balance": huge, "rpm_limit": huge})
    assert info.balance == Decimal(huge)


def test_a_video_and_a_status_take_their_fields_in_order_or_by_name() -> None:
    raw = {"id": "gen-1"}
    video = ca.Video("gen-1", "https://cdn.example/v.mp4", "m", 5.0, Decimal("0.4"), 900, 1, raw)
    assert video == ca.Video(
        id="gen-1",
        url="https://cdn.example/v.mp4",
        model="m",
        duration_seconds=5.0,
        cost=Decimal("0.4"),
        latency_ms=900,
        created=1,
        raw=raw,
    )
    status = ca.GenerationStatus("gen-1", "succeeded", "completed", 1, video, None, raw)
    assert status == ca.GenerationStatus(
        id="gen-1", status="succeeded", state="completed", created=1, video=video, raw=raw
    )
