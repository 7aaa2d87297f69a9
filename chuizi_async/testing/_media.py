"""The media host: a second origin serving the finished videos.

Every video is the same real clip (``clip.mp4``: one second of a test pattern, 96x54 H.264,
made once with ``ffmpeg -f lavfi -i testsrc2=size=96x54:rate=8:duration=1 -c:v libx264
-profile:v baseline -pix_fmt yuv420p -crf 38 -movflags +faststart``), so that a browser plays
what a batch downloaded. A ``free`` box naming the generation follows it: players skip it,
and each download is still the file of its own id.
"""

from __future__ import annotations

import functools
import struct
from importlib import resources

__all__ = ["fake_mp4"]


@functools.cache
def _clip() -> bytes:
    return resources.files(__package__).joinpath("clip.mp4").read_bytes()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def fake_mp4(generation_id: str) -> bytes:
    """A small, valid MP4 that plays, with ``generation_id`` in a trailing ``free`` box."""
    return _clip() + _box(b"free", generation_id.encode())
