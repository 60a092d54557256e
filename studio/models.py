"""The models a person may generate with: the catalogue's base models and the custom LoRAs they
may see (their own, their server's shared ones); deleting and exporting custom ones."""

from __future__ import annotations

from dataclasses import dataclass

from studio import jobs
from studio.artifacts import Artifacts
from studio.catalogue import Catalogue, ModelEntry
from studio.entities import Lora, Requester
from studio.errors import InvalidRecipe, NotFound, NotYours, StudioError, UnknownLora
from studio.queue import JobQueue
from studio.recipe import Recipe
from studio.store import Store


@dataclass(frozen=True)
class CustomModels:
    base: list[ModelEntry]
    loras: list[Lora]


class Models:
    def __init__(self, catalogue: Catalogue, store: Store, queue: JobQueue, artifacts: Artifacts) -> None:
        self.catalogue = catalogue
        self.store = store
        self.queue = queue
        self.artifacts = artifacts

    async def available(self, requester: Requester) -> CustomModels:
        """Base models, and the LoRAs this person may see (theirs, and their server's shared ones)."""
        visible = [lora for lora in await self.store.loras.usable() if lora.visible_to(requester)]
        latest: dict[str, Lora] = {}
        for lora in visible:  # ordered by version: the last one wins
            latest[lora.name.lower()] = lora
        return CustomModels(list(self.catalogue), list(latest.values()))

    async def lora(self, requester: Requester, name: str) -> Lora:
        """The newest usable version of a LoRA the requester may see; others' private ones don't exist."""
        for lora in await self.store.loras.named(name):
            if lora.usable and lora.visible_to(requester):
                return lora
        raise UnknownLora(name)

    async def delete(self, requester: Requester, name: str) -> list[Lora]:
        """Remove a model (every version): its owner, or an admin of the server it was shared in."""
        newest = await self.lora(requester, name)
        if not self._may_administer(requester, newest):
            raise NotYours("Only the model's owner or a server admin can delete it.")
        removed = [lora for lora in await self.store.loras.named(name) if lora.owner_id == newest.owner_id]
        for lora in removed:
            await self.store.loras.soft_delete(lora.id)
        return removed

    async def export(self, requester: Requester, name: str, fmt: str = "diffusers") -> tuple[str, bytes]:
        """The weights as a file: `diffusers` (load_lora_weights) or `kohya` (A1111, ComfyUI)."""
        lora = await self.lora(requester, name)
        if not self._may_administer(requester, lora):
            raise NotYours("Only the model's owner or a server admin can export its weights.")
        if fmt not in ("diffusers", "kohya"):
            raise InvalidRecipe("format", "The export format is `diffusers` or `kohya`.")
        digest = lora.weights if fmt == "diffusers" else lora.kohya
        if digest is None:
            raise NotFound("That model has no weights stored.")
        suffix = "" if fmt == "diffusers" else "-kohya"
        return f"{lora.name}-v{lora.version}{suffix}.safetensors", await self.artifacts.read(
            digest, ".safetensors"
        )

    async def adapters_for(
        self, requester: Requester, recipe: Recipe, share: bool = True
    ) -> list[jobs.AdapterRef]:
        """The recipe's LoRAs as adapters a worker can load: visible, usable, of the model's family.

        With ``share``, their weights are put in Redis under their digest for the worker to fetch.
        """
        adapters = []
        for wanted in recipe.loras:
            lora = await self.lora(requester, wanted.name)
            if lora.family != recipe.family:
                raise InvalidRecipe(
                    "lora",
                    f"LoRA `{lora.name}` was trained for {lora.family.upper()} models and "
                    f"`{recipe.model}` is {recipe.family.upper()}; use a {lora.family.upper()} model.",
                )
            if lora.weights is None:
                raise StudioError(f"LoRA `{lora.name}` has no weights stored.")
            weights = lora.weights

            async def load(digest: str = weights) -> bytes:
                return await self.artifacts.read(digest, ".safetensors")

            if share:
                await self.queue.share_blob(weights, load)
            adapters.append(jobs.AdapterRef(name=lora.name, sha=weights, weight=wanted.weight))
        return adapters

    @staticmethod
    def _may_administer(requester: Requester, lora: Lora) -> bool:
        """Delete or export a model: its owner, or an admin of the server it was trained in."""
        if requester.operator or requester.id == lora.owner_id:
            return True
        return requester.admin and requester.server == lora.server
