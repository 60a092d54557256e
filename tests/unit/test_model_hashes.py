"""The hashes Civitai reads: AutoV2 of a checkpoint, the kohya/A1111 LoRA hash, computed once per file."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from studio.model_hashes import (
    HashCache,
    addnet_sha256,
    civitai_hashes_text,
    lora_hashes_text,
    main_weights,
    model_files,
)


def safetensors_bytes(tensors: dict[str, bytes], metadata: dict[str, str] | None = None) -> bytes:
    """A valid safetensors file of uint8 tensors, written by hand (no torch in unit tests)."""
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, data in tensors.items():
        header[name] = {"dtype": "U8", "shape": [len(data)], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + b"".join(tensors.values())


def test_autov2_of_a_checkpoint_is_the_first_ten_hex_digits_of_its_sha256(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(safetensors_bytes({"w": os.urandom(3000)}))
    expected = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:10]
    assert HashCache().model_hash(str(checkpoint), "file") == expected


def test_a_folder_is_hashed_by_its_main_weights_and_the_variant_is_preferred(tmp_path: Path) -> None:
    unet = tmp_path / "sd" / "unet"
    unet.mkdir(parents=True)
    (unet / "diffusion_pytorch_model.safetensors").write_bytes(b"full precision")
    (unet / "diffusion_pytorch_model.fp16.safetensors").write_bytes(b"half precision")
    (tmp_path / "sd" / "vae").mkdir()
    cache = HashCache()
    assert (
        cache.model_hash(str(tmp_path / "sd"), "folder") == hashlib.sha256(b"full precision").hexdigest()[:10]
    )
    assert (
        cache.model_hash(str(tmp_path / "sd"), "folder", "fp16")
        == (hashlib.sha256(b"half precision").hexdigest()[:10])
    )
    transformer = tmp_path / "flux" / "transformer"
    transformer.mkdir(parents=True)
    shards = {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}
    (transformer / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"weight_map": shards})
    )
    (transformer / "model-00002-of-00002.safetensors").write_bytes(b"second")
    assert main_weights(tmp_path / "flux") is None  # a shard is missing: not on this host
    (transformer / "model-00001-of-00002.safetensors").write_bytes(b"first")
    assert (
        cache.model_hash(str(tmp_path / "flux"), "folder") == hashlib.sha256(b"firstsecond").hexdigest()[:10]
    )


def test_weights_not_on_this_host_have_no_hash(tmp_path: Path) -> None:
    assert HashCache().model_hash(str(tmp_path / "gone.safetensors"), "file") is None
    assert HashCache().model_hash(str(tmp_path), "folder") is None  # a folder without a unet
    assert model_files("nobody-has/this-model", "hub") is None  # not in the local cache


def test_a_cache_hit_does_not_read_the_file_again_and_a_change_does(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"A" * 4096)
    cache_file = tmp_path / "cache" / "hashes.json"
    cache = HashCache(cache_file)
    first = cache.model_hash(str(checkpoint), "file")
    # Same size, same modification time, other bytes: only a reread would notice.
    stat = checkpoint.stat()
    checkpoint.write_bytes(b"B" * 4096)
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cache.model_hash(str(checkpoint), "file") == first
    assert HashCache(cache_file).model_hash(str(checkpoint), "file") == first  # the JSON file kept it
    # A new modification time is a new file: hashed again.
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cache.model_hash(str(checkpoint), "file") == hashlib.sha256(b"B" * 4096).hexdigest()[:10]


def test_a_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"weights")
    cache_file = tmp_path / "hashes.json"
    cache_file.write_text("{not json")
    assert (
        HashCache(cache_file).model_hash(str(checkpoint), "file")
        == hashlib.sha256(b"weights").hexdigest()[:10]
    )
    assert json.loads(cache_file.read_text())  # rewritten whole


def test_the_lora_hash_is_the_sha256_of_the_bytes_after_the_header(tmp_path: Path) -> None:
    data = os.urandom(1000)
    plain, tagged = tmp_path / "plain.safetensors", tmp_path / "tagged.safetensors"
    plain.write_bytes(safetensors_bytes({"lora.down": data}))
    tagged.write_bytes(safetensors_bytes({"lora.down": data}, {"ss_output_name": "mine"}))
    body = plain.read_bytes()[8 + struct.unpack("<Q", plain.read_bytes()[:8])[0] :]
    assert addnet_sha256(plain) == hashlib.sha256(body).hexdigest()
    cache = HashCache()
    # Metadata lives in the header: editing it keeps the hash (kohya's and A1111's convention).
    assert cache.lora_hash(plain) == cache.lora_hash(tagged) == hashlib.sha256(body).hexdigest()[:12]


def test_a_kohya_file_s_own_hash_wins_and_a_truncated_file_is_refused(tmp_path: Path) -> None:
    own = "ab" * 32
    kohya = tmp_path / "kohya.safetensors"
    kohya.write_bytes(safetensors_bytes({"w": b"x" * 64}, {"sshs_model_hash": own}))
    assert HashCache().lora_hash(kohya) == own[:12]
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(kohya.read_bytes()[:20])
    with pytest.raises(ValueError, match="not a complete safetensors file"):
        HashCache().lora_hash(truncated)


def test_a_lora_blob_is_hashed_once_by_its_digest(tmp_path: Path) -> None:
    blob = tmp_path / "blob.safetensors"
    blob.write_bytes(safetensors_bytes({"w": b"y" * 64}))
    asked: list[str] = []

    def path_for(sha: str) -> Path:
        asked.append(sha)
        return blob

    cache = HashCache()
    first = cache.lora_hash_of_blob("f" * 64, path_for)
    assert cache.lora_hash_of_blob("f" * 64, path_for) == first
    assert asked == ["f" * 64]


def test_the_a1111_and_civitai_texts() -> None:
    hashes = {"ink": "0123456789ab", "film": "ba9876543210"}
    assert lora_hashes_text(hashes) == '"ink: 0123456789ab, film: ba9876543210"'
    assert json.loads(civitai_hashes_text("abcdef0123", hashes)) == {
        "model": "abcdef0123",
        "lora:ink": "0123456789ab",
        "lora:film": "ba9876543210",
    }
