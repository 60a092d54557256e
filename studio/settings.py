"""Typed settings, read once: environment (ATELIER_*) over config/atelier.toml over defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from studio.errors import ConfigError

CONFIG_ENV = "ATELIER_CONFIG"
DEFAULT_CONFIG = "config/atelier.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATELIER_", extra="forbid", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prefix of queue names and pub/sub channels, so several studios can share one Redis.
    queue_prefix: str = Field(default="atelier", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    data_dir: Path = Path("data")
    # Where state lives: empty, a SQLite file in data_dir (one host); or a postgresql:// URL
    # (ATELIER_DATABASE_URL; keep its password in the environment) for a bot and API replicas
    # on several hosts. A sqlite:///path URL names another SQLite file.
    database_url: str = Field(default="", pattern=r"^$|^(postgresql|postgres|sqlite)://")
    models_file: Path = Path("config/models.toml")
    styles_file: Path = Path("config/styles.toml")
    vocabulary_file: Path = Path("config/vocabulary.toml")  # /ideate keyword banks

    # Artifacts (studio/artifacts/): images and LoRA files, content-addressed. local: the folder
    # data_dir/artifacts; s3: an S3-compatible bucket (AWS, MinIO, R2, ...), whose credentials come
    # only from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never from settings.
    artifact_store: Literal["local", "s3"] = "local"
    s3_bucket: str | None = Field(default=None, validate_default=True)
    s3_prefix: str = Field(default="artifacts", pattern=r"^[A-Za-z0-9_.\-/]{0,200}$")  # <prefix>/<sha[:2]>/
    s3_endpoint_url: str | None = Field(default=None, pattern=r"^https?://\S+$")  # None: AWS S3
    s3_region: str | None = None  # None: boto3's default (AWS_DEFAULT_REGION); R2 wants "auto"

    # Worker
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    dtype: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    torch_threads: int = Field(default=0, ge=0)  # 0: torch's default
    poll_delay_s: float = Field(default=0.02, gt=0, le=5)  # how often an idle worker polls its queue
    inference_timeout_s: int = Field(default=900, ge=10)
    post_timeout_s: int = Field(default=120, ge=5)
    # A running job refreshes a lease this long; a killed worker's job is retried once it lapses.
    job_lease_s: float = Field(default=15.0, ge=2)
    max_tries: int = Field(default=3, ge=1, le=10)
    result_ttl_s: int = Field(default=86400, ge=60)  # results nobody has collected yet
    recorded_result_ttl_s: int = Field(default=300, ge=1)  # results already in SQLite
    grid_timeout_s: float = Field(default=60.0, gt=0)  # then a batch is recorded without its grid
    max_jobs_per_user: int = Field(default=3, ge=1)  # generations one person may have in flight
    # `{a, b}` permutations (studio/permutations.py): at most this many prompts from one request,
    # and Discord asks Confirm/Cancel (the API wants `confirm`) above the threshold.
    max_permutations: int = Field(default=16, ge=1, le=100)
    permutation_confirm_above: int = Field(default=4, ge=1, le=100)
    max_jobs_per_worker: int = Field(default=1, ge=1)
    cache_size: int = Field(default=2, ge=1)  # pipelines kept warm per worker

    # Fair scheduling (studio/fairness.py): people take turns on each queue, whatever front end
    # their jobs come from; off, jobs run first in, first out (lanes still apply).
    fair_scheduling: bool = True

    # Model-aware routing (studio/routing.py, gpu_worker/advertise.py): each inference worker
    # advertises in Redis what it holds warm and which models fit its memory budget.
    worker_memory_gb: float = Field(default=0.0, ge=0)  # models' weights must fit; 0: the device's total
    advertise_interval_s: float = Field(default=2.0, gt=0, le=60)  # heartbeat; expires after 3 missed
    # A worker without a job's model leaves it this long to an idle worker that holds it warm; 0: off.
    warm_preference_s: float = Field(default=3.0, ge=0, le=60)

    # Quotas (studio/quotas.py): each person's daily GPU time per server, charged from the
    # worker time of their finished jobs; servers set role limits with /atelier quota.
    daily_gpu_seconds: float = Field(default=0.0, ge=0)  # 0: unlimited
    quota_reset_hour: int = Field(default=0, ge=0, le=23)  # the hour (UTC) the day's quota resets

    # Training (the `training` queue): its own workers, so its long time limit never slows the
    # crash recovery of inference jobs.
    training_timeout_s: int = Field(default=6 * 3600, ge=60)
    training_max_tries: int = Field(default=2, ge=1, le=5)  # a killed run restarts once, then fails
    max_training_images: int = Field(default=50, ge=3, le=1000)
    max_training_steps: int = Field(default=5000, ge=10)
    training_quota_per_day: int = Field(default=3, ge=1)  # runs one person may start in 24 hours
    training_batch_size: int = Field(default=1, ge=1, le=16)
    training_gradient_accumulation: int = Field(default=1, ge=1, le=64)
    training_mixed_precision: Literal["no", "fp16", "bf16"] = "no"  # bf16 suits recent GPUs
    training_text_encoder: bool = False  # also train the text encoder(s) unless /train says
    training_samples: int = Field(default=2, ge=1, le=4)  # seeds in the base-vs-LoRA comparison
    blob_ttl_s: int = Field(default=7 * 86400, ge=60)  # LoRA weights kept in Redis after last use
    adapters_per_model: int = Field(default=8, ge=1, le=64)  # LoRAs kept loaded on a warm pipeline

    # Finishing
    upscale_tile: int = Field(default=512, ge=64, le=4096)  # upscale models run tile by tile (memory)

    # Uploads (init images): checked before any pixel is decoded.
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_upload_pixels: int = Field(default=4096 * 4096, ge=64 * 64)
    # Live previews (gpu_worker/preview.py): a running job's status shows its current step at most
    # this often, on servers that keep them on (/settings previews); 0: off everywhere.
    preview_interval_s: float = Field(default=3.0, ge=0, le=60)
    # /describe (studio/describe.py): an image is described by the [describe] model in this long.
    describe_timeout_s: float = Field(default=120.0, gt=0)
    max_lora_import_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)  # /models import, import-lora

    # REST API (`atelier api`)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=1, le=65535)
    # Where clients reach the API (used in webhook bodies); None: http://api_host:api_port
    api_public_url: str | None = None
    api_rate_per_minute: float = Field(default=60.0, gt=0, le=1_000_000)  # per key, a token bucket
    api_rate_burst: int = Field(default=10, ge=1, le=100_000)
    api_max_batch_rows: int = Field(default=100, ge=1, le=10_000)
    # API batches may bring a person's jobs in flight up to this (the per-request cap stays
    # max_jobs_per_user); a batch that would pass it is refused whole.
    api_batch_max_jobs: int = Field(default=100, ge=1, le=10_000)
    api_max_keys_per_user: int = Field(default=10, ge=1, le=100)
    api_max_body_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)  # a training upload, in all
    api_webhook_attempts: int = Field(default=4, ge=1, le=10)
    api_webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    api_webhook_backoff_s: float = Field(default=2.0, ge=0, le=300)  # doubled after each failure
    # Lets webhooks reach http://127.0.0.1 / localhost: for tests and local development only.
    api_webhook_allow_loopback: bool = False

    # Metrics, health and logs (studio/metrics.py, studio/health_server.py, studio/jsonlog.py):
    # the bot and each worker serve /metrics, /healthz and /readyz on health_port (0: off; the
    # API serves them on its own port).
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=0, ge=0, le=65535)
    log_format: Literal["text", "json"] = "text"  # json: one object per line, with job/generation ids

    # Burst threads: a project thread starts from a message posted in the channel (the old way),
    # which paces a burst of /imagine at the channel's 5 messages per 5 s; off: no starter message.
    project_thread_starter_message: bool = False

    @field_validator("s3_bucket")
    @classmethod
    def _bucket_for_s3(cls, bucket: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("artifact_store") == "s3" and not bucket:
            raise ValueError('artifact_store "s3" needs a bucket: set s3_bucket (ATELIER_S3_BUCKET)')
        return bucket

    @property
    def database_path(self) -> Path:
        return self.data_dir / "atelier.db"

    @property
    def database(self) -> Path | str:
        """What the store opens: ``database_url`` if set, else the SQLite file."""
        return self.database_url or self.database_path

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def queue_name(self, kind: str) -> str:
        return f"{self.queue_prefix}:{kind}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG))
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))


def load_settings(**overrides: object) -> Settings:
    """Settings, or a ConfigError that names the offending field."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"Invalid setting `{field}` (ATELIER_{field.upper()}): {first['msg']}.") from None
