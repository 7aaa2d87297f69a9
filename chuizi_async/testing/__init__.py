"""Testing helpers: ``FakeChuizi``, an in-process simulator of the chuizi.ai API.

It is an independent implementation of the provider's API (both the guide's and the API
reference's behaviour), with knobs for timing, failures, rate limits, balance and faults.
The ``chuizi_server`` pytest fixture (see :mod:`chuizi_async.testing._plugin`) yields one.
"""

from __future__ import annotations

from ._catalogue import SimModel as SimModel
from ._faults import Faults as Faults
from ._ratelimit import RateLimit as RateLimit
from ._records import Counters as Counters
from ._records import RecordedRequest as RecordedRequest
from ._records import SimGeneration as SimGeneration
from ._server import FakeChuizi as FakeChuizi

__all__ = [
    "Counters",
    "FakeChuizi",
    "Faults",
    "RateLimit",
    "RecordedRequest",
    "SimGeneration",
    "SimModel",
]
