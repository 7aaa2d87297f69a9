"""The media host: a second origin serving the finished videos."""

from __future__ import annotations

import hashlib
import struct

__all__ = ["fake_mp4"]

_PAYLOAD_SIZE = 4096


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def fake_mp4(generation_id: str) -> bytes:
    """Small MP4-looking bytes (an ``ftyp`` box, then ``mdat``) derived from the id."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    seed = hashlib.sha256(generation_id.encode()).digest()
    blocks = (_PAYLOAD_SIZE + len(seed) - 1) // len(seed)
    payload = b"".join(
        hashlib.sha256(seed + index.to_bytes(4, "big")).digest() for index in range(blocks)
    )
    return ftyp + _box(b"mdat", payload[:_PAYLOAD_SIZE])
