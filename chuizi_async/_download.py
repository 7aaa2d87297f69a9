"""Where a video goes on disk, and how it gets there without ever leaving half a file.

A download streams into a temporary file beside its target (``.<name>.chuizi-<hex>.part``),
checks ``Content-Length``, fsyncs, then renames atomically. A failed or interrupted download
leaves nothing behind; the temporary files of a killed process are removed by
``remove_partial_downloads`` (a resumed batch calls it) or by the next download of the
same target. Names derived from server data are sanitized: a hostile id such as ``../../x``
can never write outside the folder. ``save_video`` is ``Client.download`` from the URL to the
path; the bytes come through the send path's ``Sender.download`` (``fetch``).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ._exceptions import InvalidRequest
from ._models import Video
from ._parsing import is_web_url

__all__ = [
    "PARTIAL_SUFFIX",
    "check_media_url",
    "partial_path",
    "remove_partial_downloads",
    "safe_filename",
    "save_video",
    "target_path",
]

PARTIAL_SUFFIX = ".part"
_PARTIAL_MARK = ".chuizi-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


def check_media_url(url: str) -> str:
    """The URL if it is http(s) with a host; ``InvalidRequest`` for anything else."""
    if not isinstance(url, str) or not is_web_url(url):
        raise InvalidRequest(f"refusing to download {url!r}: only http(s) URLs are fetched")
    return url


def safe_filename(name: str, *, suffix: str = ".mp4") -> str:
    """A plain file name from an id or URL segment: no separators, no leading dot."""
    cleaned = _UNSAFE.sub("_", unquote(name)).strip("._")[:_MAX_NAME]
    if not cleaned:
        cleaned = "video"
    return cleaned if cleaned.endswith(suffix) else cleaned + suffix


def target_path(dest: str | os.PathLike[str], video_id: str | None, url: str) -> Path:
    """The file to write: ``dest`` itself, or ``<id>.mp4`` inside it when it is a folder."""
    path = Path(dest)
    if not (path.is_dir() or str(dest).endswith(("/", os.sep))):
        return path
    folder = path.resolve()
    stem = video_id or Path(urlsplit(url).path).name
    target = (folder / safe_filename(stem)).resolve()
    if target.parent != folder:  # cannot happen after safe_filename; checked all the same
        raise InvalidRequest(f"refusing to write {target} outside {folder}")
    return target


def partial_path(target: Path) -> Path:
    """A fresh temporary path beside ``target``."""
    return target.with_name(f".{target.name}{_PARTIAL_MARK}{secrets.token_hex(6)}{PARTIAL_SUFFIX}")


def remove_partial_downloads(folder: str | os.PathLike[str], target: Path | None = None) -> int:
    """Remove the temporary files that interrupted downloads left in ``folder``.

    With ``target``, only those of that file. Returns how many were removed.
    """
    root = Path(folder)
    if not root.is_dir():
        return 0
    pattern = f".{target.name if target else '*'}{_PARTIAL_MARK}*{PARTIAL_SUFFIX}"
    removed = 0
    for stale in root.glob(pattern):
        try:
            stale.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


async def save_video(
    fetch: Callable[[str, Path], Awaitable[None]],
    video_or_url: Video | str,
    dest: str | os.PathLike[str],
    *,
    overwrite: bool,
) -> Path:
    """Save a video where ``Client.download`` says; ``fetch(url, target)`` writes the file.

    Only http(s) URLs are fetched; an existing target is returned untouched unless
    ``overwrite``; what an earlier, interrupted download of the target left is removed first.
    """
    url = check_media_url(video_or_url.url if isinstance(video_or_url, Video) else video_or_url)
    video_id = video_or_url.id if isinstance(video_or_url, Video) else None
    target = target_path(dest, video_id, url)
    if target.exists() and not overwrite:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_partial_downloads(target.parent, target)
    await fetch(url, target)
    return target
