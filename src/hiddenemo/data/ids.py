"""Names that become paths: a video id, teacher id, run name or stage is a directory or file name inside
the workspace, so it may not climb out of its folder."""
from __future__ import annotations

import re

from hiddenemo.errors import UserError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


class UnsafeName(UserError, ValueError):
    """An id or name that would become a path outside its folder (the CLI prints it, no traceback)."""


def check_video_id(video_id: str, what: str = "video id") -> str:
    """A video id (or teacher id, run name) becomes a directory name, so it may not climb out."""
    video_id = str(video_id)
    if not SAFE_NAME.match(video_id) or ".." in video_id:
        hint = " (rename the file: a video's id is its file name without extension)" if what == "video id" else ""
        raise UnsafeName(f"{what} {video_id!r} is not usable as a directory name: use letters, digits, "
                         f"'.', '_' and '-' only{hint}")
    return video_id
