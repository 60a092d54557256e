"""LoRA weights on a worker: fetched from Redis by digest into the process's own scratch folder.

Workers share no disk with the bot (everything travels through Redis); a LoRA's file is fetched
once per process, checked against its digest, and checked again just before diffusers loads
it (a digest that is not 64 hex digits is refused before it names a file or a key).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from studio import jobs

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class AdapterMissing(ValueError):
    """The weights are not (or no longer) in Redis, arrived damaged, or were named wrongly."""


def _checked_sha(sha: str, name: str) -> str:
    """A digest is 64 lowercase hex digits: anything else (``../``, a path) is refused before it
    becomes part of a file name or a Redis key."""
    if not _SHA256.match(sha):
        raise AdapterMissing(f"LoRA {name[:64]} is named by `{sha[:80]}`, which is not a sha256 digest")
    return sha


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class AdapterFiles:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or Path(tempfile.mkdtemp(prefix="atelier-loras-"))

    def _location(self, sha: str) -> Path:
        return self.folder / f"{_checked_sha(sha, 'weights')}.safetensors"

    def path(self, sha: str) -> Path:
        """The file to load, once its bytes proved to have the digest it is loaded as (blocking:
        called in the job's thread, only when a LoRA is not loaded yet)."""
        path = self._location(sha)
        if not path.is_file() or _file_digest(path) != sha:
            path.unlink(missing_ok=True)  # fetched again by the next job that needs it
            raise AdapterMissing("the LoRA weights on this worker were damaged; try again")
        return path

    async def fetch(self, redis: Any, prefix: str, adapters: list[jobs.AdapterRef]) -> None:
        for ref in adapters:
            if self._location(_checked_sha(ref.sha, ref.name)).is_file():
                continue
            data = await redis.get(jobs.blob_key(prefix, ref.sha))
            if data is None:
                raise AdapterMissing(f"the weights of LoRA {ref.name} are no longer available; try again")
            if hashlib.sha256(data).hexdigest() != ref.sha:
                raise AdapterMissing(f"the weights of LoRA {ref.name} arrived damaged (their digest differs)")
            await asyncio.to_thread(self._write, ref.sha, data)

    def _write(self, sha: str, data: bytes) -> None:
        temporary = self._location(sha).with_suffix(f".{os.getpid()}.part")
        temporary.write_bytes(data)
        temporary.replace(self._location(sha))  # atomic: a half-written file is never loaded

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
