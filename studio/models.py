"""The models a person may generate with: the catalogue's base models and the custom LoRAs they
may see (their own, their server's shared ones); deleting and exporting custom ones."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Literal

from studio import jobs
from studio.artifacts import ArtifactStore
from studio.catalogue import Catalogue, ModelEntry
from studio.entities import Lora, Requester
from studio.errors import InvalidRecipe, LoraRejected, NameTaken, NotFound, NotYours, StudioError, UnknownLora
from studio.lora_import import ImportedLora, import_lora, read_base_shapes, too_big
from studio.queue import JobQueue
from studio.recipe import Recipe
from studio.settings import Settings
from studio.store import Store
from studio.store.repository import new_id
from studio.training import check_name

MAX_TRIGGER_CHARS = 200


@dataclass(frozen=True)
class CustomModels:
    base: list[ModelEntry]
    loras: list[Lora]


@dataclass(frozen=True)
class LoraImport:
    """What to import: the file as uploaded, and how the person wants the model set up."""

    data: bytes
    name: str
    base_model: str | None = None
    filename: str = ""
    trigger: str | None = None  # None: from the file's training metadata
    visibility: Literal["private", "server"] = "private"
    owner_id: str | None = None  # the operator importing for someone (their id); None: the requester


class Models:
    def __init__(
        self,
        catalogue: Catalogue,
        store: Store,
        queue: JobQueue,
        artifacts: ArtifactStore,
        settings: Settings | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.store = store
        self.queue = queue
        self.artifacts = artifacts
        self.max_import_bytes = settings.max_lora_import_bytes if settings else 512 * 1024 * 1024

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
        if digest is None and lora.imported:
            raise NotFound(f"`{lora.name}` was imported in diffusers format; export it as `diffusers`.")
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

    # Importing LoRAs made elsewhere

    def check_import_size(self, size: int) -> None:
        """Before a byte is downloaded: the file's announced size against the import limit."""
        if size > self.max_import_bytes:
            raise too_big(size, self.max_import_bytes)

    async def check_may_import(self, requester: Requester, visibility: str = "private") -> None:
        """Who may add custom models: on a server with training roles, those roles (and admins)."""
        if visibility == "server" and not requester.server and not requester.operator:
            raise InvalidRecipe("visibility", "Sharing with a server works from inside that server.")
        if requester.server and not requester.admin and not requester.operator:
            roles = await self.store.loras.training_roles(requester.server)
            if roles and not requester.roles.intersection(roles):
                listed = ", ".join(f"<@&{role}>" for role in roles)
                raise NotYours(f"On this server only these roles may add custom models: {listed}.")

    async def import_lora(self, requester: Requester, request: LoraImport) -> tuple[Lora, ImportedLora]:
        """A LoRA file from elsewhere becomes a custom model, owned and shared as a trained one.

        Everything is checked before anything is stored: the name, the base model, who may, the
        file itself (layout, family, completeness). A refusal leaves no trace.
        """
        name = check_name(request.name)
        model = self.catalogue.get(request.base_model)
        if request.owner_id is not None and not requester.operator:
            raise NotYours("Only the operator can import a model on someone else's behalf.")
        await self.check_may_import(requester, request.visibility)
        self.check_import_size(len(request.data))
        owner = request.owner_id or requester.id
        await self._check_free(owner, name)
        found = await asyncio.to_thread(self._read, request, model)
        trigger = (request.trigger if request.trigger is not None else ", ".join(found.triggers)).strip()
        if len(trigger) > MAX_TRIGGER_CHARS:
            raise InvalidRecipe("trigger", f"Trigger words are at most {MAX_TRIGGER_CHARS} characters.")
        weights = await asyncio.to_thread(self.artifacts.put, found.weights, ".safetensors")
        kohya = None
        if found.original_kohya:  # the file as A1111/ComfyUI read it is the kohya export
            kohya = await asyncio.to_thread(self.artifacts.put, request.data, ".safetensors")
        params = {
            "imported": {"format": found.format, "file": request.filename[:200], "rank": found.rank,
                         "modules": found.modules, "by": requester.id}
        }  # fmt: skip
        lora_id = new_id()
        if owner == requester.id:
            await self.store.ensure_user(owner, requester.name)
        await self.store.loras.add_imported(
            lora_id,
            owner_id=owner,
            project_id=None,
            server=requester.server,
            name=name,
            version=1,
            trigger=trigger,
            base_model=model.id,
            family=model.family,
            visibility=request.visibility,
            params_json=json.dumps(params),
            image_count=0,
            weights=weights,
            kohya=kohya,
            size_bytes=len(found.weights),
        )
        return await self.store.loras.get(lora_id), found

    async def _check_free(self, owner: str, name: str) -> None:
        if name.lower() in self.catalogue.entries:
            raise NameTaken(name)
        live = await self.store.loras.named(name)
        if any(lora.owner_id != owner for lora in live):
            raise NameTaken(name)
        if live:
            raise InvalidRecipe(
                "name", f"You already have a model named `{name}`; choose another name for this one."
            )

    def _read(self, request: LoraImport, model: ModelEntry) -> ImportedLora:
        shapes = read_base_shapes(model.source) if model.source_kind == "folder" else None
        try:
            return import_lora(
                request.data,
                model.family,
                filename=request.filename,
                max_bytes=self.max_import_bytes,
                base_shapes=shapes,
            )
        except LoraRejected:
            raise
        except Exception as error:  # a malformed file must never become a traceback
            raise LoraRejected("That file could not be read as a LoRA (it looks damaged).") from error

    @staticmethod
    def _may_administer(requester: Requester, lora: Lora) -> bool:
        """Delete or export a model: its owner, or an admin of the server it was trained in."""
        if requester.operator or requester.id == lora.owner_id:
            return True
        return requester.admin and requester.server == lora.server
