"""The artifact store port: the local folder and an S3-compatible bucket behave the same.

The bucket is a real S3-compatible server (moto's, on a free local port), reached by boto3
over HTTP exactly as AWS S3, MinIO or R2 would be.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from studio.app import open_artifacts, open_studio
from studio.artifacts import Artifacts, ArtifactStore, digest
from studio.artifacts.s3 import S3Artifacts
from studio.entities import Requester
from studio.errors import ConfigError
from studio.recipe import Recipe
from studio.settings import load_settings
from tests.integration.workers import ROOT, Deployment

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

SECRET = "s3cr3t-never-shown"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials only from the environment, as in production; nothing from ~/.aws or a metadata service."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "atelier-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "absent-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "absent-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def client(endpoint: str, credentials: None) -> S3Client:
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(client: S3Client) -> str:
    name = f"atelier-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


def keys(client: S3Client, bucket: str) -> set[str]:
    return {item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return Artifacts(tmp_path / "artifacts")
    endpoint: str = request.getfixturevalue("endpoint")
    return S3Artifacts(request.getfixturevalue("bucket"), "art", endpoint_url=endpoint, region="us-east-1")


async def test_put_get_read_round_trip(store: ArtifactStore) -> None:
    png, upload = b"\x89PNG pixels", b"an uploaded image"
    sha = await asyncio.to_thread(store.put, png)
    assert sha == digest(png)
    assert await asyncio.to_thread(store.put, upload, ".img") == digest(upload)
    assert store.get(sha) == png and await store.read(sha) == png
    assert await store.read(digest(upload), ".img") == upload
    assert store.exists(sha) and store.exists(digest(upload), ".img")
    assert not store.exists(sha, ".img")  # a suffix is part of the name
    big = bytes(range(256)) * 40_000  # 10 MB, in one request
    assert await store.read(await asyncio.to_thread(store.put, big, ".safetensors"), ".safetensors") == big


async def test_the_same_bytes_are_stored_once(store: ArtifactStore) -> None:
    shas = await asyncio.gather(*(asyncio.to_thread(store.put, b"same bytes") for _ in range(8)))
    assert set(shas) == {digest(b"same bytes")}
    assert store.put(b"same bytes") == shas[0]
    assert store.get(shas[0]) == b"same bytes"
    assert store.discard(shas[0]) == 1  # one object, however many puts


async def test_a_missing_artifact_is_a_file_not_found_on_either_store(store: ArtifactStore) -> None:
    absent = digest(b"never stored")
    with pytest.raises(FileNotFoundError):
        store.get(absent)
    with pytest.raises(FileNotFoundError):
        await store.read(absent, ".img")
    assert not store.exists(absent)
    assert store.discard(absent) == 0
    sha = store.put(b"a png")
    with pytest.raises(FileNotFoundError):
        await store.read(sha, ".img")  # the same digest under another suffix is another artifact


def test_discard_removes_every_suffix_of_a_digest_and_nothing_else(store: ArtifactStore) -> None:
    sha = store.put(b"twice", ".png")
    assert store.put(b"twice", ".img") == sha
    other = store.put(b"someone else's")
    assert store.discard(sha) == 2
    assert not store.exists(sha) and not store.exists(sha, ".img")
    with pytest.raises(FileNotFoundError):
        store.get(sha)
    assert store.get(other) == b"someone else's"
    assert store.discard(sha) == 0


def test_only_digests_name_artifacts(store: ArtifactStore) -> None:
    for name in ("../../etc/passwd", "ab", digest(b"x").upper(), digest(b"x") + "/.."):
        with pytest.raises(ValueError, match="not an artifact digest"):
            store.get(name)
        with pytest.raises(ValueError, match="not an artifact digest"):
            store.discard(name)


def test_s3_keys_and_a_second_put_sends_nothing(endpoint: str, bucket: str, client: S3Client) -> None:
    store = S3Artifacts(bucket, "/atelier/artifacts/", endpoint_url=endpoint)
    sent: list[str] = []

    def count(**kwargs: Any) -> None:
        sent.append(kwargs["model"].name)

    store.client.meta.events.register("before-call.s3.PutObject", count)
    sha = store.put(b"pixels")
    assert store.put(b"pixels") == sha
    assert sent == ["PutObject"]  # the second put found the object (HEAD) and uploaded nothing
    assert keys(client, bucket) == {f"atelier/artifacts/{sha[:2]}/{sha}.png"}
    head = client.head_object(Bucket=bucket, Key=f"atelier/artifacts/{sha[:2]}/{sha}.png")
    assert head["ContentType"] == "image/png"

    bare = S3Artifacts(bucket, "", endpoint_url=endpoint)
    other = bare.put(b"no prefix", ".img")
    assert f"{other[:2]}/{other}.img" in keys(client, bucket)
    assert bare.discard(sha) == 0  # another prefix: another store, even in the same bucket


def test_settings_choose_the_store_and_refuse_s3_without_a_bucket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str, bucket: str
) -> None:
    monkeypatch.setenv("ATELIER_CONFIG", str(tmp_path / "absent.toml"))
    local = open_artifacts(load_settings(data_dir=tmp_path))
    assert isinstance(local, Artifacts) and local.root == tmp_path / "artifacts"

    with pytest.raises(ConfigError, match=r"`s3_bucket` \(ATELIER_S3_BUCKET\).*needs a bucket"):
        load_settings(artifact_store="s3")
    monkeypatch.setenv("ATELIER_ARTIFACT_STORE", "s3")
    with pytest.raises(ConfigError, match="s3_bucket"):
        load_settings()
    with pytest.raises(ConfigError, match="s3_secret_access_key"):  # credentials are no setting
        load_settings(s3_bucket=bucket, s3_secret_access_key=SECRET)
    monkeypatch.delenv("ATELIER_ARTIFACT_STORE")

    chosen = open_artifacts(
        load_settings(artifact_store="s3", s3_bucket=bucket, s3_endpoint_url=endpoint, s3_prefix="p")
    )
    assert isinstance(chosen, S3Artifacts) and (chosen.bucket, chosen.prefix) == (bucket, "p")
    assert chosen.get(chosen.put(b"chosen")) == b"chosen"

    # A bucket that is not there stops the start, saying which, and never shows the secret.
    with pytest.raises(ConfigError, match="artifact bucket `absent-bucket-x` at http") as refused:
        open_artifacts(
            load_settings(artifact_store="s3", s3_bucket="absent-bucket-x", s3_endpoint_url=endpoint)
        )
    assert SECRET not in str(refused.value)


async def test_the_studio_keeps_its_artifacts_in_the_bucket(
    tmp_path: Path, endpoint: str, bucket: str, client: S3Client
) -> None:
    """Through the real Studio: an upload goes to the bucket, a reroll reads it back, a removal
    deletes the removed images' objects and keeps those still in use."""
    deployment = Deployment(
        data_dir=tmp_path,
        models_file=ROOT / "config" / "models.toml",  # hub ids: nothing is loaded, no worker runs
        extra_env={
            "ATELIER_ARTIFACT_STORE": "s3",
            "ATELIER_S3_BUCKET": bucket,
            "ATELIER_S3_ENDPOINT_URL": endpoint,
            "ATELIER_S3_PREFIX": "studio",
        },
    )
    alice, bob = Requester("cli:alice", "alice", server="7"), Requester("cli:bob", "bob", server="7")
    moderator = Requester("cli:mod", "mod", server="7", moderator=True)
    async with open_studio(deployment.settings()) as studio:
        assert isinstance(studio.artifacts, S3Artifacts)
        assert not (tmp_path / "artifacts").exists()

        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, "PNG")
        generation = await studio.generations.imagine(alice, "a red square", init_image=buffer.getvalue())
        init = generation.recipe.init_image
        assert init is not None
        assert f"studio/{init[:2]}/{init}.img" in keys(client, bucket)
        reroll = await studio.refine.prepare_reroll(alice, generation.id)
        assert reroll.init_image is not None and digest(reroll.init_image) == init
        await studio.generations.cancel(alice, generation.id)

        # Two finished results, one image's bytes in both; a moderator removes Alice's.
        recipe = Recipe(
            model="m", family="sd15", prompt="a cat", seed=1, steps=4, guidance=5.0, width=64, height=64
        )
        for who, gen_id, pngs in (
            (alice, "g-alice", [b"alice only", b"shared"]),
            (bob, "g-bob", [b"shared"]),
        ):
            await studio.store.ensure_user(who.id, who.name)
            project = await studio.store.project_by_name(who.id, "default")
            if project is None:
                project = await studio.store.create_project(who.id, "default", server="7")
            await studio.store.add_generation(gen_id, project.id, who.id, recipe, server="7")
            shas = [await asyncio.to_thread(studio.artifacts.put, png) for png in pngs]
            images = [(i, sha, recipe.for_image(i)) for i, sha in enumerate(shas)]
            assert await studio.store.finish_generation(gen_id, images, None, 1.0, 1)
            await studio.store.add_post(f"m-{gen_id}", "c1", gen_id, "status")
        only, shared = digest(b"alice only"), digest(b"shared")
        assert {f"studio/{only[:2]}/{only}.png", f"studio/{shared[:2]}/{shared}.png"} <= keys(client, bucket)

        erased = await studio.removal.remove(moderator, "m-g-alice")

        assert (erased.images, erased.files) == (2, 1)
        remaining = keys(client, bucket)
        assert f"studio/{only[:2]}/{only}.png" not in remaining
        assert f"studio/{shared[:2]}/{shared}.png" in remaining  # Bob's image still shows it
        with pytest.raises(FileNotFoundError):
            await studio.artifacts.read(only)
