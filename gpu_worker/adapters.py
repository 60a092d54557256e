"""LoRA weights on a worker: fetched from Redis by digest into the process's own scratch folder.

Workers share no disk with the bot (everything travels through Redis); a LoRA's file is fetched
once per process, checked against its digest, and loaded from there by diffusers.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from studio import jobs


class AdapterMissing(Exception):
    """The weights are not (or no longer) in Redis, or arrived damaged."""


class AdapterFiles:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or Path(tempfile.mkdtemp(prefix="atelier-loras-"))

    def path(self, sha: str) -> Path:
        return self.folder / f"{sha}.safetensors"

    async def fetch(self, redis: Any, prefix: str, adapters: list[jobs.AdapterRef]) -> None:
        for ref in adapters:
            if self.path(ref.sha).is_file():
                continue
            data = await redis.get(jobs.blob_key(prefix, ref.sha))
            if data is None:
                raise AdapterMissing(f"the weights of LoRA {ref.name} are no longer available; try again")
            if hashlib.sha256(data).hexdigest() != ref.sha:
                raise AdapterMissing(f"the weights of LoRA {ref.name} arrived damaged")
            await asyncio.to_thread(self._write, ref.sha, data)

    def _write(self, sha: str, data: bytes) -> None:
        temporary = self.path(sha).with_suffix(f".{os.getpid()}.part")
        temporary.write_bytes(data)
        temporary.replace(self.path(sha))  # atomic: a half-written file is never loaded

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
