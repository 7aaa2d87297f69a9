"""The model catalogue of the provider's guide: what each model needs, checked before sending.

``typical_latency`` is a prior (seconds of server processing time) that seeds the poll
schedule of a model until the client has seen its own completions.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import attrs

__all__ = ["MODELS", "ModelInfo", "ModelKind", "lookup_model"]

ModelKind = Literal["text-to-video", "image-to-video", "reference-to-video", "video-edit"]


@attrs.frozen(kw_only=True)
class ModelInfo:
    """One model of the catalogue."""

    id: str
    provider: str
    kind: ModelKind
    max_duration: int
    notes: str = ""
    typical_latency: float = 60.0

    @property
    def alias(self) -> str:
        """The bare name the API also accepts (``veo-3.1-fast`` for ``google/veo-3.1-fast``)."""
        return self.id.rsplit("/", 1)[-1]

    @property
    def needs_image(self) -> bool:
        return self.kind == "image-to-video"

    @property
    def needs_reference_images(self) -> bool:
        return self.kind == "reference-to-video"

    @property
    def needs_video(self) -> bool:
        return self.kind == "video-edit"


def _model(
    id: str, provider: str, kind: ModelKind, max_duration: int, notes: str, latency: float
) -> tuple[str, ModelInfo]:
    info = ModelInfo(
        id=id,
        provider=provider,
        kind=kind,
        max_duration=max_duration,
        notes=notes,
        typical_latency=latency,
    )
    return id, info


MODELS: Mapping[str, ModelInfo] = MappingProxyType(
    dict(
        [
            _model("google/veo-3.1", "Google Vertex", "text-to-video", 8, "highest quality", 90),
            _model("google/veo-3.1-fast", "Google Vertex", "text-to-video", 8, "faster", 45),
            _model(
                "google/veo-3.1-lite", "Google Vertex", "text-to-video", 8, "most affordable", 45
            ),
            _model("bedrock/nova-reel-1.1", "Amazon Bedrock", "text-to-video", 6, "", 90),
            _model("bedrock/nova-reel-1.0", "Amazon Bedrock", "text-to-video", 6, "", 90),
            _model(
                "bailian/happyhorse-1.0-t2v",
                "Alibaba Bailian",
                "text-to-video",
                15,
                "audio output, 720P/1080P",
                120,
            ),
            _model(
                "bailian/happyhorse-1.0-i2v",
                "Alibaba Bailian",
                "image-to-video",
                15,
                "needs a source image",
                120,
            ),
            _model(
                "bailian/happyhorse-1.0-r2v",
                "Alibaba Bailian",
                "reference-to-video",
                15,
                "needs reference images (reference_image_urls)",
                120,
            ),
            _model(
                "bailian/happyhorse-1.0-video-edit",
                "Alibaba Bailian",
                "video-edit",
                15,
                "needs a source video (video_url)",
                120,
            ),
            _model("bailian/wan2.7-t2v", "Alibaba Bailian", "text-to-video", 5, "", 60),
            _model("bailian/wan2.6-t2v", "Alibaba Bailian", "text-to-video", 5, "", 60),
            _model(
                "bailian/wan2.6-i2v",
                "Alibaba Bailian",
                "image-to-video",
                5,
                "needs a source image",
                60,
            ),
        ]
    )
)

_BY_ALIAS: Mapping[str, ModelInfo] = {info.alias: info for info in MODELS.values()}


def lookup_model(model: str) -> ModelInfo | None:
    """The catalogue entry for an id or bare alias, or None for a model we do not know."""
    return MODELS.get(model) or _BY_ALIAS.get(model)
