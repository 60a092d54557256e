"""Hashes Civitai reads: the AutoV2 ``Model hash`` of a checkpoint and the ``Lora hashes`` of LoRAs.

- AutoV2 (A1111's ``Model hash``, Civitai's "AutoV2"): the first 10 hex digits of the SHA-256 of
  the whole checkpoint file. A diffusers folder has no single checkpoint: its main weights (the
  unet's or transformer's ``diffusion_pytorch_model[.variant].safetensors``) stand for it; sharded
  weights hash as their shards' bytes one after the other, in name order.
- LoRA (A1111's ``Lora hashes``, the kohya/"addnet" hash): the SHA-256 of a safetensors file's bytes
  after its header (so editing the metadata keeps the hash), first 12 hex digits; a kohya file's own
  ``sshs_model_hash`` metadata wins, as in A1111.

Hashing a 24 GB checkpoint takes a while, so every hash is computed once per file: cached in memory
and in a small JSON file, keyed by path, size and modification time (nanoseconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from studio.safetensors_header import HeaderError, read_file_header
from studio.tomlfile import HUB_ID

log = logging.getLogger(__name__)

AUTOV2_DIGITS = 10
LORA_DIGITS = 12
CACHE_ENV = "ATELIER_HASH_CACHE"  # the JSON cache file; empty: memory only
_MAX_ENTRIES = 2000
_CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_WEIGHTS = "diffusion_pytorch_model"


def sha256_of_files(paths: Iterable[Path]) -> str:
    """The SHA-256 of the files' bytes, one after the other (one file: its plain SHA-256)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def addnet_sha256(path: Path) -> str:
    """kohya's safetensors hash: the SHA-256 of everything after the 8-byte length and the header."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        header_length = int.from_bytes(file.read(8), "little")
        if 8 + header_length > path.stat().st_size:
            raise ValueError(f"{path.name} is not a complete safetensors file")
        file.seek(8 + header_length)
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safetensors_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header (empty when absent or unreadable)."""
    try:
        return read_file_header(path).metadata
    except (OSError, HeaderError):
        return {}


def main_weights(folder: Path, variant: str | None = None) -> list[Path] | None:
    """A diffusers folder's main weights: its transformer's (Flux, SD3) or unet's file(s)."""
    for part in ("transformer", "unet"):
        where = folder / part
        if not where.is_dir():
            continue
        names = [f"{_WEIGHTS}.{variant}.safetensors"] if variant else []
        names.append(f"{_WEIGHTS}.safetensors")
        for name in names:
            if (where / name).is_file():
                return [where / name]
            index = where / f"{name}.index.json"
            if index.is_file():
                return _shards(index)
    return None


def _shards(index: Path) -> list[Path] | None:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shards = [index.parent / name for name in sorted(set(weight_map.values()))]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return shards if shards and all(shard.is_file() for shard in shards) else None


def hub_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache's copy of a hub model (never the network), if it is there."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "model_index.json")
    return Path(found).parent if isinstance(found, str) else None


def model_files(source: str, kind: str, variant: str | None = None) -> list[Path] | None:
    """The files a model's hash is taken from; None when its weights are not on this host."""
    if kind == "file":
        path = Path(source)
        return [path] if path.is_file() else None
    folder = Path(source) if kind == "folder" else hub_snapshot(source)
    return main_weights(folder, variant) if folder is not None and folder.is_dir() else None


def vae_files(source: str) -> list[Path] | None:
    """A VAE override's weights: one .safetensors file, a diffusers VAE folder's file, or a hub
    VAE's file in the local Hugging Face cache."""
    path = Path(source)
    if path.is_file():
        return [path]
    if HUB_ID.match(source) and not path.exists():
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        found = try_to_load_from_cache(source, f"{_WEIGHTS}.safetensors")
        return [Path(found)] if isinstance(found, str) else None
    weights = path / f"{_WEIGHTS}.safetensors"
    return [weights] if weights.is_file() else None


def lora_hashes_text(hashes: dict[str, str]) -> str:
    """``Lora hashes``' value as A1111 writes it: ``"name: hash, name2: hash2"`` (quoted, and
    without the ``:`` and ``,`` a name could carry)."""
    pairs = ", ".join(f"{name.replace(':', '').replace(',', '')}: {short}" for name, short in hashes.items())
    return json.dumps(pairs, ensure_ascii=False)


def civitai_hashes_text(model_hash: str | None, lora_hashes: dict[str, str]) -> str:
    """``Hashes``' value as Civitai's own generator writes it (sd-parsers reads this one too)."""
    found = {"model": model_hash} if model_hash else {}
    found.update({f"lora:{name}": short for name, short in lora_hashes.items()})
    return json.dumps(found, ensure_ascii=False)


class HashCache:
    """Full SHA-256 digests by (kind, files, sizes, mtimes): computed once, kept in memory and in
    ``file`` (JSON). Thread-safe; the file is an optimisation, and failing to use it is not an error."""

    def __init__(self, file: Path | None = None) -> None:
        self.file = file
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        self._loaded = False

    # -- what callers ask for -------------------------------------------------------------------

    def model_hash(self, source: str, kind: str, variant: str | None = None) -> str | None:
        """The AutoV2 short hash of a catalogue model, or None when its weights are not here."""
        files = model_files(source, kind, variant)
        return self.digest("sha256", files)[:AUTOV2_DIGITS] if files else None

    def vae_hash(self, source: str) -> str | None:
        files = vae_files(source)
        return self.digest("sha256", files)[:AUTOV2_DIGITS] if files else None

    def lora_hash(self, path: Path) -> str:
        """A LoRA file's A1111 short hash (its ``sshs_model_hash`` metadata when it has one)."""
        own = safetensors_metadata(path).get("sshs_model_hash", "").lower()
        if _HEX64.match(own):
            return own[:LORA_DIGITS]
        return self.digest("addnet", [path])[:LORA_DIGITS]

    def lora_hash_of_blob(self, sha: str, path_for: Callable[[str], Path]) -> str:
        """The short hash of a LoRA named by the SHA-256 of its bytes: its content fixes the hash, so
        it is kept by that digest, and ``path_for`` (which may reread the file) is asked only once."""
        key = f"lora-blob|{sha}"
        known = self._get(key)
        if known is None:
            known = self.lora_hash(path_for(sha))
            self._put(key, known)
        return known

    def digest(self, kind: str, files: list[Path]) -> str:
        """The full digest of ``files`` by ``kind`` ("sha256" or "addnet"), from the cache if the
        files are unchanged (same paths, sizes and modification times)."""
        key = self._key(kind, files)
        known = self._get(key)
        if known is not None:
            return known
        value = addnet_sha256(files[0]) if kind == "addnet" else sha256_of_files(files)
        self._put(key, value)
        return value

    # -- the cache --------------------------------------------------------------------------------

    @staticmethod
    def _key(kind: str, files: list[Path]) -> str:
        parts = [kind]
        for path in files:
            stat = path.stat()
            parts.append(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
        return "|".join(parts)

    def _get(self, key: str) -> str | None:
        with self._lock:
            if not self._loaded:
                self._memory = {**self._read_file(), **self._memory}
                self._loaded = True
            return self._memory.get(key)

    def _put(self, key: str, value: str) -> None:
        with self._lock:
            self._memory[key] = value
            if self.file is not None:
                self._write_file(key, value)

    def _read_file(self) -> dict[str, str]:
        if self.file is None:
            return {}
        try:
            data: Any = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def _write_file(self, key: str, value: str) -> None:
        assert self.file is not None
        merged = {**self._read_file(), key: value}  # another process may have added its own
        kept = dict(list(merged.items())[-_MAX_ENTRIES:])
        temporary = self.file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(kept, indent=0), encoding="utf-8")
            temporary.replace(self.file)  # atomic: readers never see half a file
        except OSError as exc:
            log.warning("could not save the hash cache %s: %s", self.file, exc)
            temporary.unlink(missing_ok=True)


def default_cache_file() -> Path | None:
    """``$ATELIER_HASH_CACHE``, else ``atelier/hashes.json`` in the user's cache folder."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured).expanduser() if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "atelier" / "hashes.json"


_shared: HashCache | None = None
_shared_lock = threading.Lock()


def shared_cache() -> HashCache:
    """The process's one hash cache (workers, the bot and the CLI each have theirs)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = HashCache(default_cache_file())
        return _shared
