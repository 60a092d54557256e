"""Background work of the API process: follow what it started, record results, call webhooks.

Results are recorded by whoever follows a job (Results.follow / Forge.follow). The API follows
every generation and training run it starts, and after a restart every one of them not yet
finished (or whose webhook is still pending), so none stays "queued" until its Redis result
expires. A Redis outage is ridden out: a follower keeps trying, with a capped backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from api.present import Links, generation_out
from api.webhooks import WebhookSender
from studio.app import Studio
from studio.errors import GenerationCancelled, GenerationFailed, StudioError
from studio.outage import QUEUE_AWAY, Outage
from studio.tracking import Retry, Tracker

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
        self._slots = asyncio.Semaphore(MAX_FOLLOWING)
        outage = Outage("following jobs", log, first_s=0.5, cap_s=OUTAGE_CAP_S)  # shared: logged once
        then = "it is followed again when asked for"
        self._generations: Tracker[str] = Tracker(
            "following generation", log, outage=lambda _: outage, retry=Retry(then=then)
        )
        self._trainings: Tracker[str] = Tracker(
            "following training", log, outage=lambda _: outage, retry=Retry(then=then)
        )

    def generation(self, generation_id: str) -> None:
        self._generations.track(generation_id, lambda: self._generation(generation_id))

    def training(self, training_id: str) -> None:
        # No slot: runs go one at a time, and one may take hours.
        self._trainings.track(training_id, lambda: self.studio.forge.follow(training_id))

    async def resume(self) -> int:
        """Follow again everything this API started and that has not ended (after a restart)."""
        generations = await self.studio.store.keys.unfinished_generations()
        for record in generations:
            self.generation(record.generation_id)
        trainings = await self.studio.store.loras.unfinished_without_thread()
        for lora in trainings:
            self.training(lora.id)
        from_web = await self.studio.store.web.unfinished_generations()  # the web studio's
        for generation_id in from_web:
            self.generation(generation_id)
        return len(generations) + len(trainings) + len(from_web)

    async def close(self) -> None:
        await self._generations.stop()
        await self._trainings.stop()

    async def _generation(self, generation_id: str) -> None:
        """Follow until it ends, then send its webhook; run again from the start after an outage."""
        try:
            async with self._slots:
                await self.studio.results.follow(generation_id)
        except QUEUE_AWAY:
            raise  # Redis or the database is away: the tracker keeps following
        except (GenerationFailed, GenerationCancelled):
            pass  # recorded as such; the webhook says so
        except StudioError as error:
            log.warning("following generation %s: %s", generation_id, error)
            return
        await self._send_webhook(generation_id)

    async def _send_webhook(self, generation_id: str) -> None:
        record = await self.studio.store.keys.generation(generation_id)
        if record is None or record.webhook_status != "pending":
            return
        generation = await self.studio.store.get_generation(generation_id)
        body = {
            "event": "generation.finished",
            "sent_at": time.time(),
            "generation": (await generation_out(self.studio, generation, self.links)).model_dump(mode="json"),
        }
        try:
            await self.webhooks.deliver(record, _json(body))
        except Exception:
            log.exception("webhook of generation %s failed", generation_id)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
