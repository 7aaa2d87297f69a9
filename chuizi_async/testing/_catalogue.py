"""The simulator's own copy of the model table, with prices, and submission validation."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

import attrs

from ._errors import ApiError

__all__ = ["BUILTIN_MODELS", "Catalogue", "SimModel", "Submission", "validate_submission"]

_EXTRA_MODEL_PRICE = Decimal("0.05")
_EXTRA_MODEL_TIME = (30.0, 90.0)
_ASPECT_RATIO = re.compile(r"[1-9][0-9]*:[1-9][0-9]*")
_DEFAULT_DURATION = 5


@attrs.frozen(kw_only=True)
class SimModel:
    """One model served by the simulator."""

    id: str
    max_duration: int
    price_per_second: Decimal = _EXTRA_MODEL_PRICE
    completion_time: tuple[float, float] = _EXTRA_MODEL_TIME
    created: int = 1_750_000_000

    @property
    def alias(self) -> str:
        """The bare name accepted in place of ``provider/model``."""
        return self.id.rsplit("/", 1)[-1]

    @property
    def owned_by(self) -> str:
        """The provider prefix of the id."""
        return self.id.split("/", 1)[0] if "/" in self.id else "chuizi"

    @property
    def default_duration(self) -> int:
        """The duration used when a submission gives none."""
        return min(_DEFAULT_DURATION, self.max_duration)

    def cost(self, duration: int) -> Decimal:
        """The price of a clip of ``duration`` seconds."""
        return self.price_per_second * duration


def _model(id: str, max_duration: int, price: str, low: float, high: float) -> SimModel:
    return SimModel(
        id=id,
        max_duration=max_duration,
        price_per_second=Decimal(price),
        completion_time=(low, high),
    )


BUILTIN_MODELS: tuple[SimModel, ...] = (
    _model("google/veo-3.1", 8, "0.10", 60.0, 120.0),
    _model("google/veo-3.1-fast", 8, "0.03", 30.0, 60.0),
    _model("google/veo-3.1-lite", 8, "0.02", 30.0, 60.0),
    _model("bedrock/nova-reel-1.1", 6, "0.08", 60.0, 120.0),
    _model("bedrock/nova-reel-1.0", 6, "0.08", 60.0, 120.0),
    _model("bailian/happyhorse-1.0-t2v", 15, "0.05", 45.0, 120.0),
    _model("bailian/happyhorse-1.0-i2v", 15, "0.05", 45.0, 120.0),
    _model("bailian/happyhorse-1.0-r2v", 15, "0.06", 45.0, 120.0),
    _model("bailian/happyhorse-1.0-video-edit", 15, "0.06", 45.0, 120.0),
    _model("bailian/wan2.7-t2v", 5, "0.04", 30.0, 90.0),
    _model("bailian/wan2.6-t2v", 5, "0.03", 30.0, 90.0),
    _model("bailian/wan2.6-i2v", 5, "0.03", 30.0, 90.0),
)


@attrs.frozen
class Catalogue:
    """The models of one simulator, by id and by alias."""

    models: Mapping[str, SimModel]
    _aliases: Mapping[str, str] = attrs.field(alias="aliases")

    @classmethod
    def build(
        cls,
        *,
        extra_models: Mapping[str, int],
        completion_times: Mapping[str, tuple[float, float]],
        default_completion_time: tuple[float, float] | None,
    ) -> Catalogue:
        """Build the catalogue: the built-in table, extra models and timing overrides."""
        models = {model.id: model for model in BUILTIN_MODELS}
        for id, max_duration in extra_models.items():
            models[id] = SimModel(id=id, max_duration=max_duration)
        if default_completion_time is not None:
            for id, model in models.items():
                models[id] = attrs.evolve(model, completion_time=default_completion_time)
        aliases = {model.alias: model.id for model in models.values()}
        for name, times in completion_times.items():
            target = name if name in models else aliases.get(name)
            if target is None:
                raise ValueError(f"completion_times names an unknown model: {name!r}")
            models[target] = attrs.evolve(models[target], completion_time=times)
        return cls(models, aliases=aliases)

    def resolve(self, name: str) -> SimModel | None:
        """Find a model by id or bare alias."""
        model = self.models.get(name)
        if model is None and name in self._aliases:
            model = self.models[self._aliases[name]]
        return model

    def resolve_all(self, names: Collection[str]) -> frozenset[str]:
        """Resolve names (ids or aliases) to ids, keeping unknown names as given."""
        return frozenset(model.id if (model := self.resolve(n)) else n for n in names)


@attrs.frozen(kw_only=True)
class Submission:
    """A validated ``POST /v1/videos/generations`` body."""

    model: SimModel
    prompt: str
    duration: int
    body: Mapping[str, Any]


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def _is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_duration(body: Mapping[str, Any], model: SimModel) -> int:
    duration = body.get("duration", model.default_duration)
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise _invalid("'duration' must be an integer number of seconds")
    if not 1 <= duration <= model.max_duration:
        raise _invalid(
            f"'duration' must be between 1 and {model.max_duration} seconds for {model.id}"
        )
    return duration


def _check_inputs(body: Mapping[str, Any], model: SimModel) -> None:
    if model.id.endswith("-i2v") and not (
        _is_text(body.get("image_url")) or _is_text(body.get("image"))
    ):
        raise _invalid(f"{model.id} requires a source image: 'image_url' or 'image'")
    if model.id.endswith("-r2v"):
        refs = body.get("reference_image_urls")
        if not isinstance(refs, list) or not refs:
            raise _invalid(f"{model.id} requires a non-empty 'reference_image_urls' list")
    if model.id.endswith("-video-edit") and not _is_text(body.get("video_url")):
        raise _invalid(f"{model.id} requires a source video: 'video_url'")
    ratio = body.get("aspect_ratio")
    if ratio is not None and not (isinstance(ratio, str) and _ASPECT_RATIO.fullmatch(ratio)):
        raise _invalid("'aspect_ratio' must be width:height, for example '16:9', '9:16' or '1:1'")
    watermark = body.get("watermark")
    if watermark is not None and not isinstance(watermark, bool):
        raise _invalid("'watermark' must be a boolean")


def validate_submission(
    body: object, catalogue: Catalogue, allowed_models: frozenset[str] | None
) -> Submission:
    """Check a submission body, raising :class:`ApiError` with the API's answer if it is bad."""
    if not isinstance(body, dict):
        raise _invalid("Request body must be a JSON object")
    name = body.get("model")
    if not _is_text(name):
        raise _invalid("'model' is required and must be a non-empty string")
    assert isinstance(name, str)
    model = catalogue.resolve(name)
    if model is None:
        raise ApiError(
            404, f"The model '{name}' was not found", "not_found", code="model_not_found"
        )
    if allowed_models is not None and model.id not in allowed_models:
        raise ApiError(
            403,
            f"This key is not allowed to use model '{model.id}'",
            "permission_error",
            code="model_not_allowed",
        )
    prompt = body.get("prompt")
    if not _is_text(prompt):
        raise _invalid("'prompt' is required and must be a non-empty string")
    assert isinstance(prompt, str)
    duration = _check_duration(body, model)
    _check_inputs(body, model)
    return Submission(model=model, prompt=prompt, duration=duration, body=body)
