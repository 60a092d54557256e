"""What a server's members share: the feed of top creations, remix channels, model samples.

A server's remix channels are a read: ``store.remix_channels(server)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from studio.artifacts import ArtifactStore
from studio.catalogue import Catalogue
from studio.entities import Generation, ImageRecord, Post, Requester
from studio.errors import InvalidRecipe, NotYours
from studio.store import Store
from studio.styles import StyleBook

BROWSE_PAGE = 5
MAX_PAGE = 100  # the most images one page may ask for (the web gallery shows 24)
PERIODS: dict[str, float] = {"day": 86400.0, "week": 7 * 86400.0, "month": 30 * 86400.0, "all": 0.0}


@dataclass(frozen=True)
class FeedEntry:
    image: ImageRecord
    favourites: int
    remixes: int
    posts: list[Post]


class Community:
    def __init__(
        self, catalogue: Catalogue, styles: StyleBook, store: Store, artifacts: ArtifactStore
    ) -> None:
        self.catalogue = catalogue
        self.styles = styles
        self.store = store
        self.artifacts = artifacts

    async def browse(
        self,
        requester: Requester,
        period: str = "week",
        model: str | None = None,
        style: str | None = None,
        page: int = 0,
        age_restricted: bool = False,
        *,
        per_page: int = BROWSE_PAGE,
        creator: str | None = None,
        posts: bool = True,
    ) -> list[FeedEntry]:
        """Top public creations of the requester's server by favourites and remixes, ``per_page``
        per page (only ``creator``'s, an owner id, when given). Another server's images never
        appear (their links would not open for everyone), nor images the safety classifier
        flagged unless asked from an ``age_restricted`` channel. ``posts``: with each entry's
        Discord posts (jump links); a page with no use for them saves a read per entry."""
        if period not in PERIODS:
            raise InvalidRecipe("period", f"Period must be one of {', '.join(PERIODS)}.")
        if model is not None:
            self.catalogue.get(model)
        if style is not None:
            self.styles.get(style)
        if not 1 <= per_page <= MAX_PAGE:
            raise InvalidRecipe("per_page", f"A page holds 1 to {MAX_PAGE} images.")
        since = time.time() - PERIODS[period] if PERIODS[period] else 0.0
        rows = await self.store.top_public_images(
            requester.server,
            since,
            model,
            style and style.lower(),
            per_page,
            max(0, page) * per_page,
            flagged=age_restricted,
            creator=creator,
        )
        entries = []
        for image, favourites, remixes in rows:
            shown = await self.store.posts_of(image.generation_id) if posts else []
            entries.append(FeedEntry(image, favourites, remixes, shown))
        return entries

    async def share_channels(self, generation: Generation) -> list[str]:
        """The remix channels a finished generation is cross-posted to: its own server's, and only
        when it is public (another server's channels never get it)."""
        if generation.private or generation.server is None:
            return []
        return await self.store.remix_channels(generation.server)

    async def set_remix_channel(self, requester: Requester, channel_id: str, on: bool) -> list[str]:
        """Mark (or unmark) a channel where public results are cross-posted: server admins only."""
        if not (requester.admin and requester.server):
            raise NotYours("Only server admins (Manage Server) can choose the remix channels.")
        await self.store.ensure_user(requester.id, requester.name)
        await self.store.set_remix_channel(requester.server, channel_id, requester.id, on)
        return await self.store.remix_channels(requester.server)

    async def sample_of_model(
        self, requester: Requester, model_id: str, age_restricted: bool = False
    ) -> bytes | None:
        """The most favoured public image of the requester's server made with a base model, if any
        (a flagged one only for an ``age_restricted`` channel)."""
        image = await self.store.sample_image(model_id, requester.server, flagged=age_restricted)
        return await self.artifacts.read(image.artifact) if image is not None else None
