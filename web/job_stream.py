"""A generation's live events for the job page, as Server-Sent Events.

From the same events the bot uses: ``Results.follow`` (which records the result, idempotently,
whoever else follows it) relays the worker's progress, and the queue position is read while the
job waits, as the bot's status message does. Events (``event:`` name, ``data:`` one JSON line):

    queued    {"position": int, "eta_s": int | null}
    progress  {"step": int, "total": int, "preview": "data:image/webp;base64,..." | null}
    done      {"images": [{"index", "page_url", "thumb_url", "image_url", "edit_url"}]}
    failed    {"detail": str}

The stream ends after ``done`` or ``failed``; a client that goes away cancels its follow.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from studio import eta, jobs
from studio.app import Studio
from studio.entities import Generation, ImageRecord
from studio.errors import GenerationCancelled, GenerationFailed
from studio.outage import QUEUE_AWAY
from web.pages.media import image_url, thumbnail_url

log = logging.getLogger(__name__)
POSITION_POLL_S = 2.0  # as the bot's status message: how often a waiting job's place is read
HEARTBEAT_S = 15.0  # a comment line this often: proxies keep the stream, a gone client is noticed
RETRY_MS = 3000  # how soon a browser reconnects after a stream that broke off
MAX_PREVIEW_BYTES = 256 * 1024  # previews are a few KB; a larger one is not relayed
CANCELLED = "This generation was cancelled."


@dataclass(frozen=True)
class Place:
    """Where a queued generation stands: jobs ahead of it, and about how long until its result."""

    position: int | None
    eta_s: int | None


async def queue_place(studio: Studio, generation_id: str) -> Place:
    """As the API's generation_out computes it; nothing (not an error) while Redis is away."""
    try:
        position = await studio.queue.position(jobs.INFERENCE, generation_id)
    except QUEUE_AWAY:
        return Place(None, None)
    try:
        seconds = await eta.shared(studio.store, studio.generations.routing).seconds(position)
    except Exception:  # an estimate never costs the page its status
        log.warning("no queue estimate this time", exc_info=True)
        seconds = None
    return Place(position, None if seconds is None else round(seconds))


def failure_sentence(generation: Generation) -> str:
    if generation.status == "cancelled":
        return CANCELLED
    return f"This generation failed: {generation.error or 'unknown error'}"


def result_links(server_id: str, images: list[ImageRecord]) -> list[dict[str, Any]]:
    """The result images as the job page links them: each to its image page and the editor."""
    links = []
    for image in images:
        page = f"/s/{server_id}/images/{image.generation_id}/{image.index}"
        links.append(
            {
                "index": image.index,
                "page_url": page,
                "thumb_url": thumbnail_url(server_id, image),
                "image_url": image_url(server_id, image),
                "edit_url": f"{page}/edit",
            }
        )
    return links


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def preview_url(preview: bytes | None) -> str | None:
    if preview is None or len(preview) > MAX_PREVIEW_BYTES:
        return None
    return "data:image/webp;base64," + base64.b64encode(preview).decode()


class JobStream:
    """One browser's view of one generation: its events until it ends or the browser leaves."""

    def __init__(self, studio: Studio, server_id: str, generation: Generation) -> None:
        self.studio = studio
        self.server_id = server_id
        self.generation = generation
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()  # None: the stream is over
        self.started = asyncio.Event()

    async def events(self) -> AsyncGenerator[str, None]:
        yield f"retry: {RETRY_MS}\n\n"
        if self.generation.is_final:  # already over: its outcome at once, nothing to follow
            yield await self._outcome(self.generation)
            return
        if self.generation.status == "running":
            self.started.set()
            yield event("progress", {"step": 0, "total": 0, "preview": None})
        tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self._positions())]
        try:
            while True:
                try:
                    item = await asyncio.wait_for(self.outbox.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield ": waiting\n\n"
                    continue
                if item is None:
                    return
                yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self) -> None:
        generation_id = self.generation.id
        try:
            finished = await self.studio.results.follow(generation_id, self._on_progress)
        except GenerationCancelled:
            self.outbox.put_nowait(event("failed", {"detail": CANCELLED}))
        except GenerationFailed as failure:
            self.outbox.put_nowait(event("failed", {"detail": f"This generation failed: {failure.reason}"}))
        except Exception:
            # Not its outcome (e.g. the store was busy): the stream ends and the browser reconnects.
            log.warning("following generation %s for the web failed", generation_id, exc_info=True)
        else:
            self.outbox.put_nowait(event("done", {"images": result_links(self.server_id, finished.images)}))
        finally:
            self.outbox.put_nowait(None)

    async def _on_progress(self, update: jobs.ProgressEvent) -> None:
        if update.type == "started":
            self.started.set()
            self.outbox.put_nowait(event("progress", {"step": 0, "total": 0, "preview": None}))
        elif update.type == "step" and update.total:
            self.started.set()
            data = {"step": update.step, "total": update.total, "preview": preview_url(update.preview)}
            self.outbox.put_nowait(event("progress", data))

    async def _positions(self) -> None:
        """The queue position (and ETA) while the job waits, sent when it changes."""
        last: Place | None = None
        while not self.started.is_set():
            place = await queue_place(self.studio, self.generation.id)
            if place.position is not None and place != last and not self.started.is_set():
                self.outbox.put_nowait(event("queued", {"position": place.position, "eta_s": place.eta_s}))
                last = place
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.started.wait(), POSITION_POLL_S)

    async def _outcome(self, generation: Generation) -> str:
        if generation.status != "done":
            return event("failed", {"detail": failure_sentence(generation)})
        images = await self.studio.store.images_of(generation.id)
        return event("done", {"images": result_links(self.server_id, images)})


class EventStream(StreamingResponse):
    """text/event-stream, unbuffered; the source is closed when the response ends, however it
    ends (a browser that leaves stops the follow at once, not when the generator is collected)."""

    def __init__(self, source: AsyncGenerator[str, None]) -> None:
        super().__init__(
            source,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self.source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.source.aclose()
