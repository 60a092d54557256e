"""Finishing use cases: inpaint, upscale, grade and export an image, from any front end.

Each is prepared (the source image checked, the settings validated, the person's right to the
image or result checked) into a plan, then run. An inpaint is a generation: its plan is a
``GenerationPlan``, started by ``Generations.start``. Upscales, grades and exports run one
worker job each and keep the result at full size.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import zipfile
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from studio import jobs
from studio.artifacts import ArtifactStore, digest
from studio.catalogue import Catalogue
from studio.entities import Finish, ImageRecord, Project, Requester
from studio.errors import InvalidRecipe, NotFound, NotYours, StudioError
from studio.families import Family
from studio.finishing import EXPORT_PRESETS, ExportSpec, Grade, check_upscale
from studio.generations import GenerationPlan, Generations
from studio.mask_levels import mask_level
from studio.preferences import Preferences
from studio.queue import JobQueue
from studio.recipe import Draft, Recipe
from studio.refine import Refine
from studio.settings import Settings
from studio.store import Store
from studio.store.repository import new_id
from studio.uploads import UploadRejected, inspect_image, verify_image

INPAINT_STRENGTH = 0.95  # high: the masked area takes the prompt, the rest is kept exactly anyway
MAX_PACK_IMAGES = 24
MAX_PACK_PRESETS = 4
# Failures a worker reports that are the user's to fix; their words are shown as they are.
USER_FACING_FAILURES = frozenset({"ExportTooLarge", "UserFacingError", "ValueError"})
_SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "avif": ".avif"}


@dataclass(frozen=True)
class UpscalePlan:
    requester: Requester
    image: bytes
    factor: int
    source: ImageRecord | None  # the Atelier image it is (None: an upload)


@dataclass(frozen=True)
class GradePlan:
    requester: Requester
    image: bytes
    grade: Grade
    source: ImageRecord | None


@dataclass(frozen=True)
class ExportPlan:
    requester: Requester
    image: bytes
    spec: ExportSpec
    source: ImageRecord | None


@dataclass(frozen=True)
class Exported:
    finish: Finish
    data: bytes
    filename: str
    quality: int | None


class Finisher:
    def __init__(
        self,
        settings: Settings,
        catalogue: Catalogue,
        store: Store,
        queue: JobQueue,
        artifacts: ArtifactStore,
        generations: Generations,
        refine: Refine,
        preferences: Preferences,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.store = store
        self.queue = queue
        self.artifacts = artifacts
        self.generations = generations
        self.refine = refine
        self.preferences = preferences

    # Sources: an Atelier image (public or the person's own) or an upload

    async def image(self, requester: Requester, generation_id: str, index: int) -> tuple[ImageRecord, bytes]:
        image = await self.refine.remixable(requester, generation_id, index)
        return image, await self.artifacts.read(image.artifact)

    async def own_image(
        self, requester: Requester, generation_id: str, index: int
    ) -> tuple[ImageRecord, bytes]:
        """Image ``index`` of a batch of the requester's own (its U button upscales it)."""
        refused = StudioError("Only the person who made these images can upscale them.")
        await self.generations.owned(requester, generation_id, refused)
        image = await self.store.image_at(generation_id, index)
        return image, await self.artifacts.read(image.artifact)

    async def checked_upload(self, data: bytes) -> tuple[int, int]:
        info = await asyncio.to_thread(
            verify_image, data, self.settings.max_upload_bytes, self.settings.max_upload_pixels
        )
        return info.width, info.height

    # Inpaint: a generation

    async def prepare_inpaint(
        self,
        requester: Requester,
        text: str,
        image: bytes,
        mask: bytes | None = None,
        box: str | None = None,
        options: Draft | None = None,
        *,
        parent: ImageRecord | None = None,
        private: bool | None = False,
        project: str = "default",
        thread_id: str | None = None,
    ) -> GenerationPlan:
        """A repaint of the mask's white area (an uploaded mask, or a box in percent), the
        person's defaults beneath. ``thread_id``: deliver into that project thread of theirs;
        ``private``: None leaves it to their defaults."""
        target: str | Project = project
        if thread_id is not None:
            target = await self.generations.own_thread_project(requester, thread_id)
        defaults = await self.preferences.defaults_for(requester)
        if (mask is None) == (box is None):
            raise InvalidRecipe("mask", "Give a mask image (white = repaint) or a box `x,y,w,h` in percent.")
        width, height = await self.checked_upload(image)
        if box is not None:
            png = await asyncio.to_thread(_box_mask, parse_box(box), width, height)
        else:
            assert mask is not None
            png = await self._checked_mask(mask, width, height)
        # The model the options, the text's flags, its style or the person's defaults choose.
        model = self.catalogue.get(self.generations.recipe(text, options, digest(image), defaults).model)
        work_w, work_h = _working_size(width, height, model.family_spec)
        said = (options or Draft()).merged(Draft(width=work_w, height=work_h))
        if said.strength is None:
            said = said.merged(Draft(strength=INPAINT_STRENGTH))
        recipe = self.generations.recipe(text, said, digest(image), defaults)
        update: dict[str, Any] = {"mask": digest(png), "aspect": None}
        if parent is not None:
            update["parent_image"] = parent.id
        recipe = Recipe.model_validate({**recipe.model_dump(), **update})
        chosen = private if private is not None else bool(defaults.private)
        plan = GenerationPlan(requester, recipe, target, image, png, chosen, deliver_to=thread_id)
        await self.generations.check(plan)
        return plan

    async def _checked_mask(self, mask: bytes, width: int, height: int) -> bytes:
        return await checked_mask(mask, width, height, self.settings)

    # Upscale

    async def prepare_upscale(
        self, requester: Requester, image: bytes, factor: int, source: ImageRecord | None = None
    ) -> UpscalePlan:
        width, height = await self.checked_upload(image)
        check_upscale(factor, width, height)
        await self.generations.quotas.check(requester)  # an upscale spends GPU time too
        return UpscalePlan(requester, image, factor, source)

    async def upscale(self, plan: UpscalePlan) -> Finish:
        payload = jobs.UpscaleJob(
            image=plan.image,
            factor=plan.factor,
            model=self.catalogue.upscaler,
            tile=self.settings.upscale_tile,
            prompt=plan.source.recipe.prompt if plan.source else "",
        )
        result = await self._run(jobs.UPSCALE_SPEC, payload, "The upscale")
        finish = await self._record(
            plan.requester,
            "upscale",
            plan.image,
            plan.source,
            {"factor": plan.factor},
            result.png,
            ".png",
            method=result.method,
            size=(result.width, result.height),
        )
        await self.generations.quotas.charge_finish(plan.requester, finish.id, result.seconds)
        return finish

    # Grade: previewed first (before/after), applied at full size on demand

    async def prepare_grade(
        self, requester: Requester, image: bytes, grade: Grade, source: ImageRecord | None = None
    ) -> GradePlan:
        await self.checked_upload(image)
        return GradePlan(requester, image, grade, source)

    async def prepare_regrade(
        self, requester: Requester, finish_id: str, changes: dict[str, Any]
    ) -> GradePlan:
        """A grade's source again, with some of its settings changed: its owner only."""
        finish, grade = await self.grade_of(requester, finish_id)
        adjusted = Grade.model_validate({**grade.model_dump(), **changes})
        source = await self.artifacts.read(finish.source, ".img")
        record = await self.store.image(finish.source_image) if finish.source_image else None
        return GradePlan(requester, source, adjusted, record)

    async def preview_grade(self, plan: GradePlan) -> Finish:
        """A before/after of the grade; the graded image itself is made when it is applied."""
        payload = jobs.GradeJob(image=plan.image, grade=plan.grade.model_dump(), preview=True)
        preview = (await self._run(jobs.GRADE_SPEC, payload, "The grade")).png
        finish = await self._record(
            plan.requester, "grade", plan.image, plan.source, plan.grade.model_dump(), None, ".png"
        )
        await self.store.finishes.set_preview(finish.id, await asyncio.to_thread(self.artifacts.put, preview))
        return await self.store.finishes.get(finish.id)

    async def grade_of(self, requester: Requester, finish_id: str) -> tuple[Finish, Grade]:
        finish = await self._owned(requester, finish_id, "grade")
        return finish, Grade.model_validate(json.loads(finish.params_json))

    async def apply_grade(self, requester: Requester, finish_id: str) -> Finish:
        finish, grade = await self.grade_of(requester, finish_id)
        if finish.artifact is not None:
            return finish
        source = await self.artifacts.read(finish.source, ".img")
        payload = jobs.GradeJob(image=source, grade=grade.model_dump())
        png = (await self._run(jobs.GRADE_SPEC, payload, "The grade")).png
        sha = await asyncio.to_thread(self.artifacts.put, png)
        await self.store.finishes.set_applied(finish.id, sha, await asyncio.to_thread(_size_of, png))
        return await self.store.finishes.get(finish.id)

    # Export

    async def prepare_export(
        self, requester: Requester, image: bytes, spec: ExportSpec, source: ImageRecord | None = None
    ) -> ExportPlan:
        await self.checked_upload(image)
        return ExportPlan(requester, image, spec, source)

    async def export(self, plan: ExportPlan) -> Exported:
        source, spec = plan.source, plan.spec
        parameters = (_embedded_parameters(plan.image) or source.recipe.to_a1111()) if source else None
        payload = jobs.ExportJob(image=plan.image, spec=spec.model_dump(), parameters=parameters)
        result = await self._run(jobs.EXPORT_SPEC, payload, "The export")
        suffix = _SUFFIX[result.format]
        finish = await self._record(
            plan.requester,
            "export",
            plan.image,
            source,
            spec.model_dump(),
            result.data,
            suffix,
            size=(result.width, result.height),
        )
        stem = f"atelier-{(source.id if source else finish.id)[:8]}-{spec.preset}"
        return Exported(finish, result.data, stem + suffix, result.quality)

    async def export_pack(
        self, requester: Requester, project: Project, specs: list[ExportSpec]
    ) -> tuple[bytes, int]:
        """A zip of the person's favourites in this project, in each of the presets."""
        if not 1 <= len(specs) <= MAX_PACK_PRESETS:
            raise InvalidRecipe("presets", f"Choose 1 to {MAX_PACK_PRESETS} presets for a pack.")
        favourites = await self.store.favourites_of(requester.id, project.id)
        if not favourites:
            raise NotFound("You have no favourites in this project yet: pick some with ⭐ first.")
        if len(favourites) > MAX_PACK_IMAGES:
            raise InvalidRecipe(
                "favourites", f"A pack holds at most {MAX_PACK_IMAGES} images; you have {len(favourites)}."
            )
        files: list[tuple[str, bytes]] = []
        for number, image in enumerate(favourites, start=1):
            png = await self.artifacts.read(image.artifact)
            for spec in specs:
                exported = await self.export(await self.prepare_export(requester, png, spec, image))
                files.append((f"{spec.preset}/{number:02d}-{exported.filename}", exported.data))
        return await asyncio.to_thread(_zip, files), len(files)

    # Results

    async def finish(self, requester: Requester, finish_id: str) -> tuple[Finish, bytes | None]:
        """A result and its bytes (None while a grade is only previewed): its owner only."""
        finish = await self._owned(requester, finish_id)
        if finish.artifact is None:
            return finish, None
        return finish, await self.artifacts.read(finish.artifact, finish.suffix)

    async def preview_png(self, finish: Finish) -> bytes:
        if finish.preview is None:
            raise NotFound("That grade has no preview.")
        return await self.artifacts.read(finish.preview)

    async def _owned(self, requester: Requester, finish_id: str, kind: str | None = None) -> Finish:
        finish = await self.store.finishes.get(finish_id)
        if finish.owner_id != requester.id and not requester.operator:
            raise NotYours("Only the person who made this can use it.")
        if kind is not None and finish.kind != kind:
            raise NotFound("That result does not exist.")
        return finish

    async def _record(
        self,
        requester: Requester,
        kind: str,
        image: bytes,
        source: ImageRecord | None,
        params: dict[str, Any],
        result: bytes | None,
        suffix: str,
        method: str | None = None,
        size: tuple[int, int] | None = None,
    ) -> Finish:
        source_sha = await asyncio.to_thread(self.artifacts.put, image, ".img")
        sha = await asyncio.to_thread(self.artifacts.put, result, suffix) if result is not None else None
        await self.store.ensure_user(requester.id, requester.name)
        return await self.store.finishes.add(
            new_id(),
            owner_id=requester.id,
            kind=kind,
            source_image=source.id if source else None,
            source=source_sha,
            params_json=json.dumps(params),
            artifact=sha,
            suffix=suffix,
            method=method,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )

    async def _run(
        self, job: jobs.JobSpec[jobs.PayloadT, jobs.ResultT], payload: jobs.PayloadT, what: str
    ) -> jobs.ResultT:
        timeout = (
            self.settings.inference_timeout_s if job.queue == jobs.INFERENCE else self.settings.post_timeout_s
        )
        return await self.queue.run(
            job, payload, timeout=timeout + 30, what=what, user_facing=USER_FACING_FAILURES
        )


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``x,y,w,h`` in percent of the image: a box inside it, with some area."""
    parts = [p for p in text.replace("%", "").replace(";", ",").split(",") if p.strip()]
    try:
        x, y, w, h = (float(p) for p in parts)
    except ValueError:
        raise InvalidRecipe(
            "box", f"A box is `x,y,w,h` in percent, e.g. `25,25,50,50` (got `{text[:40]}`)."
        ) from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise InvalidRecipe("box", "The box needs finite numbers.")
    if not (0 <= x < 100 and 0 <= y < 100):
        raise InvalidRecipe(
            "box", f"The box must start inside the image: x and y from 0 to 100 (got {x:g}, {y:g})."
        )
    if not (0 < w <= 100 and 0 < h <= 100):
        raise InvalidRecipe(
            "box", f"The box's width and height are above 0 and at most 100 percent (got {w:g}, {h:g})."
        )
    if x + w > 100 + 1e-9 or y + h > 100 + 1e-9:
        raise InvalidRecipe("box", f"The box runs outside the image (x+w = {x + w:g}%, y+h = {y + h:g}%).")
    return x, y, w, h


def _box_mask(box: tuple[float, float, float, float], width: int, height: int) -> bytes:
    x, y, w, h = box
    left, top = round(width * x / 100), round(height * y / 100)
    right = max(left + 1, min(width, round(width * (x + w) / 100)))
    bottom = max(top + 1, min(height, round(height * (y + h) / 100)))
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle((left, top, right - 1, bottom - 1), fill=255)
    return _png(mask)


async def checked_mask(mask: bytes, width: int, height: int, settings: Settings) -> bytes:
    """A painted mask for a ``width`` x ``height`` image as a greyscale PNG (white = repaint):
    refused in one sentence when it is not an image, of another size, or all black."""
    try:
        info = inspect_image(mask, settings.max_upload_bytes, settings.max_upload_pixels)
    except UploadRejected as error:
        raise InvalidRecipe("mask", f"The mask was refused: {error}") from None
    if (info.width, info.height) != (width, height):
        raise InvalidRecipe(
            "mask",
            f"The mask is {info.width}x{info.height} but the image is {width}x{height}; "
            "paint the mask on a copy of the image itself (white = repaint).",
        )
    try:
        return await asyncio.to_thread(_mask_png, mask, settings)
    except UploadRejected as error:
        raise InvalidRecipe("mask", f"The mask was refused: {error}") from None


def _mask_png(data: bytes, settings: Any) -> bytes:
    """The mask as greyscale PNG, its levels read by ``mask_level`` (a feathered edge stays soft)."""
    verify_image(data, settings.max_upload_bytes, settings.max_upload_pixels)
    with Image.open(io.BytesIO(data)) as source:
        grey = source.convert("L")
    mask = grey.point(mask_level)
    if mask.getbbox() is None:
        raise UploadRejected("it is all black, so there is nothing to repaint (white = repaint).")
    return _png(mask)


def _working_size(width: int, height: int, family: Family) -> tuple[int, int]:
    """The image's size in the family's multiples (8; 16 for Flux, SD3) within its limits, aspect kept."""
    scale = min(1.0, family.max_side / max(width, height))
    scale = max(scale, family.min_side / min(width, height))
    step, least = family.multiple, family.min_side
    return (max(least, int(width * scale) // step * step), max(least, int(height * scale) // step * step))


def _embedded_parameters(image: bytes) -> str | None:
    """The A1111 text a worker wrote into the PNG (with the model and LoRA hashes only it knows),
    read from the chunks before the pixels; None when the image carries none."""
    try:
        with Image.open(io.BytesIO(image), formats=["PNG"]) as png:
            text = png.info.get("parameters")
    except (OSError, ValueError):
        return None
    return text if isinstance(text, str) and text else None


def _size_of(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        return image.size


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:  # images: already compressed
        for name, data in files:
            archive.writestr(name, data)
    return out.getvalue()


def preset_names() -> list[str]:
    return list(EXPORT_PRESETS)
