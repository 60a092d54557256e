"""Content-addressed artifact store: files named by the sha256 of their bytes.

``ArtifactStore`` is the port; ``Artifacts`` (a local folder, the default) and
``studio.artifacts.s3.S3Artifacts`` (an S3-compatible bucket) implement it. Both name an
artifact ``<sha256[:2]>/<sha256><suffix>``, store the same bytes once, and raise
``FileNotFoundError`` for an artifact they do not hold, so callers behave the same on either.
``put``/``get``/``exists``/``discard`` block (callers run them in a thread); ``read`` does that itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_digest(sha: str) -> str:
    """``sha`` if it is a sha256 hex digest; a ValueError otherwise (no path or key from user input)."""
    if not _DIGEST.match(sha):
        raise ValueError(f"not an artifact digest: {sha!r}")
    return sha


class ArtifactStore(Protocol):
    """Where artifacts live: the studio's port, whatever the backend."""

    def put(self, data: bytes, suffix: str = ".png") -> str:
        """Store bytes once (a second put of the same bytes writes nothing); returns their digest."""
        ...

    def get(self, sha: str, suffix: str = ".png") -> bytes:
        """The bytes; FileNotFoundError if there are none."""
        ...

    def exists(self, sha: str, suffix: str = ".png") -> bool: ...

    def discard(self, sha: str) -> int:
        """Delete every artifact of a digest, whatever its suffix; how many went (removal, /forget)."""
        ...

    async def read(self, sha: str, suffix: str = ".png") -> bytes:
        """``get`` off the event loop."""
        ...


class Artifacts:
    """The local folder implementation (the default): ``<root>/<sha[:2]>/<sha><suffix>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha: str, suffix: str = ".png") -> Path:
        check_digest(sha)
        return self.root / sha[:2] / f"{sha}{suffix}"

    def put(self, data: bytes, suffix: str = ".png") -> str:
        """Store bytes once; returns their digest. Safe against concurrent writers (atomic rename)."""
        sha = digest(data)
        target = self.path(sha, suffix)
        if target.exists():
            return sha
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def get(self, sha: str, suffix: str = ".png") -> bytes:
        return self.path(sha, suffix).read_bytes()

    def exists(self, sha: str, suffix: str = ".png") -> bool:
        return self.path(sha, suffix).is_file()

    def discard(self, sha: str) -> int:
        """Delete every file of a digest, whatever its suffix; how many went (removal, /forget)."""
        files = list(self.path(sha, "").parent.glob(f"{sha}.*"))
        for file in files:
            file.unlink(missing_ok=True)
        return len(files)

    async def read(self, sha: str, suffix: str = ".png") -> bytes:
        """``get`` off the event loop (a large file blocks nothing)."""
        return await asyncio.to_thread(self.get, sha, suffix)
