"""chuizi_async: the asyncio client for the chuizi.ai video generation API.

::

    import chuizi_async as ca

    async with ca.Client() as client:
        video = await client.generate("google/veo-3.1-fast", "a cat watching rain", duration=5)
"""

from __future__ import annotations

from ._as_completed import AsCompleted as AsCompleted
from ._catalogue import MODELS as MODELS
from ._catalogue import ModelInfo as ModelInfo
from ._client import Client as Client
from ._client import ClientStats as ClientStats
from ._config import Limits as Limits
from ._download import remove_partial_downloads as remove_partial_downloads
from ._error_rules import error_type as error_type
from ._exceptions import APIConnectError as APIConnectError
from ._exceptions import APIConnectionError as APIConnectionError
from ._exceptions import APIConnectTimeout as APIConnectTimeout
from ._exceptions import APIError as APIError
from ._exceptions import APITimeoutError as APITimeoutError
from ._exceptions import AuthenticationError as AuthenticationError
from ._exceptions import BadRequestError as BadRequestError
from ._exceptions import ChuiziError as ChuiziError
from ._exceptions import ClientClosed as ClientClosed
from ._exceptions import CostLimitExceeded as CostLimitExceeded
from ._exceptions import GenerationCancelled as GenerationCancelled
from ._exceptions import GenerationError as GenerationError
from ._exceptions import GenerationFailed as GenerationFailed
from ._exceptions import GenerationTimeout as GenerationTimeout
from ._exceptions import InsufficientBalanceError as InsufficientBalanceError
from ._exceptions import InvalidRequest as InvalidRequest
from ._exceptions import NotFoundError as NotFoundError
from ._exceptions import NotSubmitted as NotSubmitted
from ._exceptions import PermissionDeniedError as PermissionDeniedError
from ._exceptions import RateLimitError as RateLimitError
from ._exceptions import ResponseFormatError as ResponseFormatError
from ._exceptions import ServerError as ServerError
from ._exceptions import SubmissionUncertain as SubmissionUncertain
from ._exceptions import UnreadableVideo as UnreadableVideo
from ._exceptions import UnusableVideo as UnusableVideo
from ._generation import Generation as Generation
from ._journal import Journal as Journal
from ._journal import JournalEntry as JournalEntry
from ._mock import MockTransport as MockTransport
from ._mock import json_response as json_response
from ._models import BillingRecord as BillingRecord
from ._models import ErrorInfo as ErrorInfo
from ._models import GenerationRequest as GenerationRequest
from ._models import GenerationStatus as GenerationStatus
from ._models import KeyInfo as KeyInfo
from ._models import RemoteModel as RemoteModel
from ._models import Video as Video
from ._policy import PollPolicy as PollPolicy
from ._transport import AiohttpTransport as AiohttpTransport
from ._transport import Request as Request
from ._transport import Response as Response
from ._transport import Transport as Transport

__version__ = "0.1.0"

__all__ = [
    "APIConnectError",
    "APIConnectTimeout",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AiohttpTransport",
    "AsCompleted",
    "AuthenticationError",
    "BadRequestError",
    "BillingRecord",
    "ChuiziError",
    "Client",
    "ClientClosed",
    "ClientStats",
    "CostLimitExceeded",
    "ErrorInfo",
    "Generation",
    "GenerationCancelled",
    "GenerationError",
    "GenerationFailed",
    "GenerationRequest",
    "GenerationStatus",
    "GenerationTimeout",
    "InsufficientBalanceError",
    "InvalidRequest",
    "Journal",
    "JournalEntry",
    "KeyInfo",
    "Limits",
    "MODELS",
    "MockTransport",
    "ModelInfo",
    "NotFoundError",
    "NotSubmitted",
    "PermissionDeniedError",
    "PollPolicy",
    "RateLimitError",
    "RemoteModel",
    "Request",
    "Response",
    "ResponseFormatError",
    "ServerError",
    "SubmissionUncertain",
    "Transport",
    "UnreadableVideo",
    "UnusableVideo",
    "Video",
    "error_type",
    "json_response",
    "remove_partial_downloads",
]
