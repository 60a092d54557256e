"""arq WorkerSettings per queue, built from the studio settings."""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from arq.worker import Worker, func, get_kwargs

from gpu_worker import tasks
from studio import jobs
from studio.queue import redis_settings
from studio.settings import Settings, load_settings

log = logging.getLogger(__name__)


def _quiet_libraries() -> None:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


async def _startup_inference(ctx: dict[str, Any]) -> None:
    from gpu_worker.adapters import AdapterFiles
    from gpu_worker.inference import make_cache

    _quiet_libraries()
    ctx["cache"] = make_cache(ctx["settings"])
    ctx["adapter_files"] = AdapterFiles()
    ctx["upscalers"] = {}  # upscale models by source, loaded on first use
    log.info("inference worker ready on %s", ctx["cache"].device)


async def _shutdown_inference(ctx: dict[str, Any]) -> None:
    if "adapter_files" in ctx:
        ctx["adapter_files"].remove()


async def _startup_training(ctx: dict[str, Any]) -> None:
    import torch

    from gpu_worker.pipelines import pick_device

    _quiet_libraries()
    settings: Settings = ctx["settings"]
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    ctx["device"] = pick_device(settings.device)
    log.info("training worker ready on %s", ctx["device"])


def worker_settings(settings: Settings, kind: str) -> type:
    """A WorkerSettings class for ``kind`` (inference, post or training), as `arq` takes it."""
    if kind not in jobs.QUEUES:
        raise ValueError(f"unknown queue {kind!r}; choose one of {', '.join(jobs.QUEUES)}")
    queue_name = settings.queue_name(kind)
    timeout, max_tries = {
        jobs.INFERENCE: (settings.inference_timeout_s, settings.max_tries),
        # Its own queue and workers: arq's recovery waits for the longest timeout of a worker's
        # functions, so hours of training time limit must never sit in an inference worker.
        jobs.TRAINING: (settings.training_timeout_s, settings.training_max_tries),
        jobs.POST: (settings.post_timeout_s, settings.max_tries),
    }[kind]
    functions = [
        func(task.run, name=task.job.name, timeout=timeout, max_tries=max_tries)
        for task in tasks.TASKS
        if task.job.queue == kind
    ]
    startup: Any = None
    shutdown: Any = None
    if kind == jobs.INFERENCE:
        startup, shutdown = _startup_inference, _shutdown_inference
        max_jobs = settings.max_jobs_per_worker  # one GPU runs one job at a time
    elif kind == jobs.TRAINING:
        startup = _startup_training
        max_jobs = 1  # a run takes the whole GPU
    else:
        max_jobs = max(2, os.cpu_count() or 2)
    worker_id = f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    attributes: dict[str, Any] = {
        "functions": functions,
        "queue_name": queue_name,
        # No connection retries of arq's own: ResilientWorker waits out an outage, however long.
        "redis_settings": redis_settings(settings.redis_url),
        "job_serializer": jobs.serialize,
        "job_deserializer": jobs.deserialize,
        "poll_delay": settings.poll_delay_s,
        "max_jobs": max_jobs,
        "keep_result": settings.result_ttl_s,
        "max_tries": settings.max_tries,
        "health_check_key": jobs.health_check_key(queue_name, worker_id),
        "health_check_interval": 10,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "after_job_end": tasks.announce_end,
        "log_results": False,  # results are PNG bytes
        "ctx": {"settings": settings, "worker_id": worker_id},  # worker_id: its advertisement (advertise.py)
    }
    return type(f"{kind.capitalize()}WorkerSettings", (), attributes)


def make_worker(settings: Settings, kind: str) -> Worker:
    """The worker `atelier worker` runs: arq's, riding out Redis outages (gpu_worker.resilient)."""
    from gpu_worker.resilient import ResilientWorker

    return ResilientWorker(**get_kwargs(worker_settings(settings, kind)))


def __getattr__(name: str) -> type:
    """`arq gpu_worker.settings.InferenceWorkerSettings` works too (settings read on first use).

    That runs arq's plain Worker, which exits when Redis goes away: prefer `atelier worker`.
    """
    kinds = {
        "InferenceWorkerSettings": jobs.INFERENCE,
        "PostWorkerSettings": jobs.POST,
        "TrainingWorkerSettings": jobs.TRAINING,
    }
    if name in kinds:
        return worker_settings(load_settings(), kinds[name])
    raise AttributeError(name)
