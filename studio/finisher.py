"""Finishing use cases: inpaint, upscale, grade and export an image, from any front end."""

from __future__ import annotations

import asyncio
import io
import json
import math
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageDraw

from studio import jobs
from studio.artifacts import digest
from studio.entities import Finish, ImageRecord, Project, Requester
from studio.errors import InvalidRecipe, NotFound, NotYours
from studio.finishing import EXPORT_PRESETS, ExportSpec, Grade, check_upscale
from studio.recipe import Draft, Recipe
from studio.store.repository import new_id
from studio.uploads import UploadRejected, inspect_image, verify_image

if TYPE_CHECKING:
    from studio.defaults import Defaults
    from studio.entities import Generation
    from studio.service import Studio

INPAINT_STRENGTH = 0.95  # high: the masked area takes the prompt, the rest is kept exactly anyway
MAX_PACK_IMAGES = 24
MAX_PACK_PRESETS = 4
# Failures a worker reports that are the user's to fix; their words are shown as they are.
USER_FACING_FAILURES = frozenset({"ExportTooLarge", "UserFacingError", "ValueError"})
_SUFFIX = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "avif": ".avif"}


@dataclass(frozen=True)
class InpaintPlan:
    recipe: Recipe
    image: bytes
    mask: bytes  # PNG, the image's size, white = repaint


@dataclass(frozen=True)
class Exported:
    finish: Finish
    data: bytes
    filename: str
    quality: int | None


class Finisher:
    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.settings = studio.settings
        self.store = studio.store
        self.queue = studio.queue
        self.artifacts = studio.artifacts

    # Sources: an Atelier image (public or the person's own) or an upload

    async def image(self, requester: Requester, generation_id: str, index: int) -> tuple[ImageRecord, bytes]:
        image = await self.studio.remixable(requester, generation_id, index)
        return image, await self.studio.image_png(image)

    async def checked_upload(self, data: bytes) -> tuple[int, int]:
        info = await asyncio.to_thread(
            verify_image, data, self.settings.max_upload_bytes, self.settings.max_upload_pixels
        )
        return info.width, info.height

    # Inpaint

    async def plan_inpaint(
        self,
        text: str,
        image: bytes,
        mask: bytes | None = None,
        box: str | None = None,
        options: Draft | None = None,
        defaults: Defaults | None = None,
    ) -> InpaintPlan:
        """A repaint of the mask's white area (an uploaded mask, or a box in percent)."""
        if (mask is None) == (box is None):
            raise InvalidRecipe("mask", "Give a mask image (white = repaint) or a box `x,y,w,h` in percent.")
        width, height = await self.checked_upload(image)
        if box is not None:
            png = await asyncio.to_thread(_box_mask, parse_box(box), width, height)
        else:
            assert mask is not None
            png = await self._checked_mask(mask, width, height)
        model = self.studio.catalogue.get(
            (options.model if options else None) or (defaults.model if defaults else None)
        )
        work_w, work_h = _working_size(width, height, model.family_spec.max_side, model.family_spec.min_side)
        said = (options or Draft()).merged(Draft(width=work_w, height=work_h))
        if said.strength is None:
            said = said.merged(Draft(strength=INPAINT_STRENGTH))
        recipe = self.studio.plan(text, said, digest(image), defaults)
        recipe = Recipe.model_validate({**recipe.model_dump(), "mask": digest(png), "aspect": None})
        return InpaintPlan(recipe, image, png)

    async def _checked_mask(self, mask: bytes, width: int, height: int) -> bytes:
        try:
            info = inspect_image(mask, self.settings.max_upload_bytes, self.settings.max_upload_pixels)
        except UploadRejected as error:
            raise InvalidRecipe("mask", f"The mask was refused: {error}") from None
        if (info.width, info.height) != (width, height):
            raise InvalidRecipe(
                "mask",
                f"The mask is {info.width}x{info.height} but the image is {width}x{height}; "
                "paint the mask on a copy of the image itself (white = repaint).",
            )
        try:
            return await asyncio.to_thread(_binary_mask, mask, self.settings)
        except UploadRejected as error:
            raise InvalidRecipe("mask", f"The mask was refused: {error}") from None

    async def inpaint(
        self,
        requester: Requester,
        plan: InpaintPlan,
        project: Project,
        parent: ImageRecord | None = None,
        deliver_to: str | None = None,
        private: bool = False,
    ) -> Generation:
        recipe = plan.recipe
        if parent is not None:
            recipe = recipe.model_copy(update={"parent_image": parent.id})
        return await self.studio.submit(
            requester, recipe, project, plan.image, private, deliver_to=deliver_to, mask=plan.mask
        )

    # Upscale, grade, export: one worker job each, the result kept at full size

    async def upscale(
        self, requester: Requester, image: bytes, factor: int, source: ImageRecord | None = None
    ) -> Finish:
        width, height = await self.checked_upload(image)
        check_upscale(factor, width, height)
        upscaler = self.studio.catalogue.upscaler
        payload = jobs.UpscaleJob(
            image=image,
            factor=factor,
            model=upscaler,
            tile=self.settings.upscale_tile,
            prompt=source.recipe.prompt if source else "",
        )
        value = await self._run(jobs.INFERENCE, jobs.UPSCALE, payload.model_dump(), "The upscale")
        result = jobs.UpscaleResult.model_validate(value)
        return await self._record(
            requester,
            "upscale",
            image,
            source,
            {"factor": factor},
            result.png,
            ".png",
            method=result.method,
            size=(result.width, result.height),
        )

    async def preview_grade(
        self, requester: Requester, image: bytes, grade: Grade, source: ImageRecord | None = None
    ) -> Finish:
        """A before/after of the grade; the graded image itself is made when it is applied."""
        await self.checked_upload(image)
        payload = jobs.GradeJob(image=image, grade=grade.model_dump(), preview=True)
        value = await self._run(jobs.POST, jobs.GRADE, payload.model_dump(), "The grade")
        preview = jobs.ComposeGridResult.model_validate(value).png
        finish = await self._record(requester, "grade", image, source, grade.model_dump(), None, ".png")
        await self.store.finishes.set_preview(finish.id, await asyncio.to_thread(self.artifacts.put, preview))
        return await self.store.finishes.get(finish.id)

    async def grade_of(self, requester: Requester, finish_id: str) -> tuple[Finish, Grade]:
        finish = await self._owned(requester, finish_id, "grade")
        return finish, Grade.model_validate(json.loads(finish.params_json))

    async def apply_grade(self, requester: Requester, finish_id: str) -> Finish:
        finish, grade = await self.grade_of(requester, finish_id)
        if finish.artifact is not None:
            return finish
        source = await self.source_png(finish)
        payload = jobs.GradeJob(image=source, grade=grade.model_dump())
        value = await self._run(jobs.POST, jobs.GRADE, payload.model_dump(), "The grade")
        png = jobs.ComposeGridResult.model_validate(value).png
        sha = await asyncio.to_thread(self.artifacts.put, png)
        await self.store.finishes.set_applied(finish.id, sha, await asyncio.to_thread(_size_of, png))
        return await self.store.finishes.get(finish.id)

    async def export(
        self, requester: Requester, image: bytes, spec: ExportSpec, source: ImageRecord | None = None
    ) -> Exported:
        await self.checked_upload(image)
        parameters = source.recipe.to_a1111() if source else None
        payload = jobs.ExportJob(image=image, spec=spec.model_dump(), parameters=parameters)
        value = await self._run(jobs.POST, jobs.EXPORT, payload.model_dump(), "The export")
        result = jobs.ExportResult.model_validate(value)
        suffix = _SUFFIX[result.format]
        finish = await self._record(
            requester,
            "export",
            image,
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
            png = await self.studio.image_png(image)
            for spec in specs:
                exported = await self.export(requester, png, spec, image)
                files.append((f"{spec.preset}/{number:02d}-{exported.filename}", exported.data))
        return await asyncio.to_thread(_zip, files), len(files)

    async def finish(self, requester: Requester, finish_id: str) -> tuple[Finish, bytes | None]:
        """A result and its bytes (None while a grade is only previewed): its owner only."""
        finish = await self._owned(requester, finish_id)
        if finish.artifact is None:
            return finish, None
        return finish, await asyncio.to_thread(self.artifacts.get, finish.artifact, finish.suffix)

    async def source_png(self, finish: Finish) -> bytes:
        return await asyncio.to_thread(self.artifacts.get, finish.source, ".img")

    async def source_record(self, finish: Finish) -> ImageRecord | None:
        return await self.store.image(finish.source_image) if finish.source_image else None

    async def preview_png(self, finish: Finish) -> bytes:
        if finish.preview is None:
            raise NotFound("That grade has no preview.")
        return await asyncio.to_thread(self.artifacts.get, finish.preview)

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

    async def _run(self, kind: str, function: str, payload: dict[str, Any], what: str) -> dict[str, Any]:
        timeout = (
            self.settings.inference_timeout_s if kind == jobs.INFERENCE else self.settings.post_timeout_s
        )
        return await self.queue.run(
            kind, function, payload, timeout=timeout + 30, what=what, user_facing=USER_FACING_FAILURES
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


def _binary_mask(data: bytes, settings: Any) -> bytes:
    verify_image(data, settings.max_upload_bytes, settings.max_upload_pixels)
    with Image.open(io.BytesIO(data)) as source:
        grey = source.convert("L")
    mask = grey.point(lambda v: 255 if v >= 128 else 0)
    if mask.getbbox() is None:
        raise UploadRejected("it is all black, so there is nothing to repaint (white = repaint).")
    return _png(mask)


def _working_size(width: int, height: int, max_side: int, min_side: int) -> tuple[int, int]:
    """The image's size in multiples of 8 within the family's limits (aspect kept)."""
    scale = min(1.0, max_side / max(width, height))
    scale = max(scale, min_side / min(width, height))
    return (max(min_side, int(width * scale) // 8 * 8), max(min_side, int(height * scale) // 8 * 8))


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
