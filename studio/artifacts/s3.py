"""Artifacts in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, ...): the same port as the folder.

Keys are ``<prefix>/<sha256[:2]>/<sha256><suffix>``. Credentials come only from boto3's own chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in the environment, or an instance role):
never from Atelier's settings, and nothing here logs them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from studio.artifacts import check_digest, digest
from studio.errors import ConfigError

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

_MISSING = {"404", "NoSuchKey", "NotFound"}
_CONTENT_TYPES = {".png": "image/png", ".safetensors": "application/octet-stream"}


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING


class S3Artifacts:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        # A low-level client is thread-safe: one serves every put/get thread of the process.
        self.client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                # Checksums only where S3 requires them: several S3-compatible servers reject the
                # newer default ones.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def key(self, sha: str, suffix: str = ".png") -> str:
        check_digest(sha)
        name = f"{sha[:2]}/{sha}{suffix}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def check(self) -> None:
        """At start-up: the bucket answers with these credentials, or a ConfigError saying why not."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            where = f" at {self.endpoint_url}" if self.endpoint_url else ""
            raise ConfigError(
                f"The artifact bucket `{self.bucket}`{where} cannot be used (settings s3_bucket, "
                "s3_endpoint_url, s3_region; credentials from the environment: AWS_ACCESS_KEY_ID, "
                f"AWS_SECRET_ACCESS_KEY): {exc}"
            ) from None

    def exists(self, sha: str, suffix: str = ".png") -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(sha, suffix))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def put(self, data: bytes, suffix: str = ".png") -> str:
        """Upload bytes once: an object already there (HEAD) is not sent again; returns their digest."""
        sha = digest(data)
        if not self.exists(sha, suffix):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(sha, suffix),
                Body=data,
                ContentType=_CONTENT_TYPES.get(suffix, "application/octet-stream"),
            )
        return sha

    def get(self, sha: str, suffix: str = ".png") -> bytes:
        key = self.key(sha, suffix)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(f"no artifact s3://{self.bucket}/{key}") from None
            raise
        with response["Body"] as body:
            return body.read()

    def discard(self, sha: str) -> int:
        """Delete every object of a digest, whatever its suffix; how many went."""
        prefix = self.key(sha, ".")
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        for key in keys:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        return len(keys)

    async def read(self, sha: str, suffix: str = ".png") -> bytes:
        """``get`` in a thread: the download blocks nothing."""
        return await asyncio.to_thread(self.get, sha, suffix)
