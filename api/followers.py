"""Background work of the API process: follow what it started, record results, call webhooks.

Results are recorded by whoever follows a job (Studio.follow / Forge.follow). The API follows
every generation and training run it starts, and after a restart every one of them not yet
finished (or whose webhook is still pending), so none stays "queued" until its Redis result
expires. A Redis outage is ridden out: a follower keeps trying, with a capped backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from typing import Any

from api.present import Links, generation_out
from api.webhooks import WebhookSender
from studio.errors import GenerationCancelled, GenerationFailed, StudioError
from studio.outage import QUEUE_AWAY, Outage
from studio.service import Studio

log = logging.getLogger(__name__)
# Each follower holds a Redis subscription while it waits; queued jobs run in order, so the
# oldest followers are the next to finish and the rest wait their turn for a slot.
MAX_FOLLOWING = 64
OUTAGE_CAP_S = 5.0  # the longest pause between tries while Redis is away


class Followers:
    def __init__(self, studio: Studio, webhooks: WebhookSender, links: Links) -> None:
        self.studio = studio
        self.webhooks = webhooks
        self.links = links  # webhook bodies are sent outside any request: the public base URL
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(MAX_FOLLOWING)
        self._outage = Outage("following jobs", log, first_s=0.5, cap_s=OUTAGE_CAP_S)  # logged once

    def generation(self, generation_id: str) -> None:
        self._spawn(f"g:{generation_id}", self._generation(generation_id))

    def training(self, training_id: str) -> None:
        self._spawn(f"t:{training_id}", self._training(training_id))

    def _spawn(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        if key in self._tasks:
            work.close()
            return
        task = asyncio.create_task(work)
        self._tasks[key] = task
        task.add_done_callback(lambda _: self._tasks.pop(key, None))

    async def resume(self) -> int:
        """Follow again everything this API started and that has not ended (after a restart)."""
        generations = await self.studio.keys.unfinished_generations()
        for record in generations:
            self.generation(record.generation_id)
        trainings = await self.studio.forge.unthreaded()
        for lora in trainings:
            self.training(lora.id)
        return len(generations) + len(trainings)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _generation(self, generation_id: str) -> None:
        outage = self._outage
        while True:
            try:
                async with self._slots:
                    await self.studio.follow(generation_id)
            except QUEUE_AWAY as error:  # Redis is away: keep following
                await asyncio.sleep(outage.failed(error))
                continue
            except (GenerationFailed, GenerationCancelled):
                pass  # recorded as such; the webhook says so
            except StudioError as error:
                log.warning("following generation %s: %s", generation_id, error)
                return
            except Exception:
                log.exception(
                    "following generation %s failed; it is followed again when asked for", generation_id
                )
                return
            outage.recovered()
            break
        await self._send_webhook(generation_id)

    async def _send_webhook(self, generation_id: str) -> None:
        record = await self.studio.keys.api_generation(generation_id)
        if record is None or record.webhook_status != "pending":
            return
        generation = await self.studio.generation(generation_id)
        body = {
            "event": "generation.finished",
            "sent_at": time.time(),
            "generation": (await generation_out(self.studio, generation, self.links)).model_dump(mode="json"),
        }
        try:
            await self.webhooks.deliver(record, _json(body))
        except Exception:
            log.exception("webhook of generation %s failed", generation_id)

    async def _training(self, training_id: str) -> None:
        outage = self._outage
        while True:
            try:  # no slot: runs go one at a time, and one may take hours
                await self.studio.forge.follow(training_id)
                return
            except QUEUE_AWAY as error:  # Redis is away: keep following
                await asyncio.sleep(outage.failed(error))
            except Exception:
                log.exception(
                    "following training %s failed; it is followed again when asked for", training_id
                )
                return


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
