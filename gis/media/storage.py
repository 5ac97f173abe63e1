"""Where photos are kept: a small interface, and the file-system store GridMap uses.

A stored object is named by its content: its key is the SHA-256 of its bytes (64 hexadecimal
digits), so the same bytes are kept once, a key can never point at other bytes, and a write
that is repeated (a retried upload) changes nothing. The file-system store shards the files by
the key's first two pairs of digits (``ab/cd/abcd…``), keeping directories small, and writes
through a temporary file in the same directory renamed into place, so a reader never meets a
half-written file and a crash leaves no file under a key.

Bytes whose database row is then rolled back stay behind, unreferenced; they are harmless (no
URL names them) and take the space of one photo each.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, Protocol

from gis.errors import NotFound

KEY_PATTERN = re.compile(r"[0-9a-f]{64}")


def content_key(data: bytes) -> str:
    """The key of ``data``: its SHA-256, in hexadecimal."""
    return hashlib.sha256(data).hexdigest()


class MediaStorage(Protocol):
    """What GridMap needs of a media store (a file system here; an object store would do)."""

    def put(self, data: bytes) -> str:
        """Keep ``data``; returns its key (the same bytes always give the same key)."""

    def open(self, key: str) -> BinaryIO:
        """The stored bytes of ``key`` to read; NotFound when none are stored under it."""

    def exists(self, key: str) -> bool:
        """Whether bytes are stored under ``key``."""


class FileStorage:
    """Media under a directory (GRIDMAP_MEDIA_ROOT), created when the first file is put."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
            raise ValueError(f"a media key is 64 lower-case hexadecimal digits; got {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = content_key(data)
        target = self.path(key)
        if target.is_file():
            return key
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{key[:8]}-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)  # atomic: readers see no file or all of it
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return key

    def open(self, key: str) -> BinaryIO:
        try:
            return self.path(key).open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"no stored media under key {key}",
                           zh=f"媒体存储中没有键为 {key} 的文件") from exc

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()
