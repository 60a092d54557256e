"""Content-addressed artifact store: files named by the sha256 of their bytes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Artifacts:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha: str, suffix: str = ".png") -> Path:
        if not _DIGEST.match(sha):
            raise ValueError(f"not an artifact digest: {sha!r}")
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

    def discard(self, sha: str) -> int:
        """Delete every file of a digest, whatever its suffix; how many went (removal, /forget)."""
        files = list(self.path(sha, "").parent.glob(f"{sha}.*"))
        for file in files:
            file.unlink(missing_ok=True)
        return len(files)

    async def read(self, sha: str, suffix: str = ".png") -> bytes:
        """``get`` off the event loop (a large file blocks nothing)."""
        return await asyncio.to_thread(self.get, sha, suffix)
