"""Training sets: images a person gathers for a LoRA, one Discord message at a time.

Discord withholds other people's message attachments from an app without the privileged
Message Content intent, even over REST, so a pasted link to a member's message shows no
images. A message context menu ("Add to training set") receives its target message in full:
each use adds that message's images here, and /train takes them all as its source.
"""

from __future__ import annotations

import asyncio

from studio.artifacts import ArtifactStore
from studio.entities import Requester
from studio.errors import DatasetRejected
from studio.settings import Settings
from studio.store import Store
from studio.store.training_sets import TrainingSetRows
from studio.training import TrainingImage
from studio.uploads import verify_image


class TrainingSets:
    def __init__(self, settings: Settings, store: Store, artifacts: ArtifactStore) -> None:
        self.settings = settings
        self.store = store
        self.rows = TrainingSetRows(store)
        self.artifacts = artifacts

    @staticmethod
    def _key(requester: Requester) -> tuple[str, str]:
        # One set per person per server: images gathered in one server never train in another.
        return requester.id, requester.server or ""

    async def add(self, requester: Requester, images: list[TrainingImage]) -> int:
        """Verify and keep ``images`` in the person's set; returns how many it holds now."""
        if not images:
            raise DatasetRejected("That message has no images.")
        owner, server = self._key(requester)
        holding = await self.rows.count(owner, server)
        most = self.settings.max_training_images
        if holding + len(images) > most:
            raise DatasetRejected(
                f"Your training set holds {holding} image(s) and takes at most {most}; "
                "train on it or start over before adding more."
            )
        for image in images:  # all verified before any is kept: nothing is half-added
            await asyncio.to_thread(
                verify_image, image.data, self.settings.max_upload_bytes, self.settings.max_upload_pixels
            )
        await self.store.ensure_user(requester.id, requester.name)
        for image in images:
            sha = await asyncio.to_thread(self.artifacts.put, image.data, ".img")
            await self.rows.add(owner, server, sha, image.caption)
        return holding + len(images)

    async def images(self, requester: Requester) -> list[TrainingImage]:
        """The person's set, oldest first; DatasetRejected when it is empty."""
        items = await self.rows.items(*self._key(requester))
        if not items:
            raise DatasetRejected(
                "Your training set is empty: on a message with images, open the message menu "
                "(right-click or long-press → Apps) and choose “Add to training set”."
            )
        return [
            TrainingImage(await asyncio.to_thread(self.artifacts.get, sha, ".img"), caption)
            for sha, caption in items
        ]

    async def clear(self, requester: Requester) -> int:
        """Empty the person's set (done once a training run has taken its images)."""
        return await self.rows.clear(*self._key(requester))
