"""/upscale, /inpaint, /grade and /export: decode input, call the Finisher, render the outcome."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.exts.finish._views import AdjustModal, grade_view
from bot.interactions import reply
from bot.links import parse_link, read_upload
from bot.projects import post_status, project_target, requester_of
from bot.ui.captions import upscale_caption
from bot.ui.images import FittedFile, Picture, age_restricted, send_images, withheld_sentence
from studio.entities import ImageRecord
from studio.errors import InvalidRecipe, StudioError
from studio.finishing import EXPORT_PRESETS, FORMATS, GRADE_PRESETS, GRADE_SLIDERS, ExportSpec, Grade
from studio.recipe import Draft

if TYPE_CHECKING:
    from bot.app import AtelierBot

SOURCE_HELP = "Attach an image, or give a link to an Atelier image (and its number in a grid)."


async def source_image(
    bot: AtelierBot,
    interaction: discord.Interaction[Any],
    image: discord.Attachment | None,
    link: str | None,
    number: int | None,
) -> tuple[bytes, ImageRecord | None]:
    """The image to work on: an upload, or an Atelier image by message link (public or yours)."""
    if (image is None) == (link is None):
        raise StudioError(SOURCE_HELP)
    if image is not None:
        return await read_upload(image, bot.studio.settings.max_upload_bytes), None
    assert link is not None
    _, message_id = parse_link(interaction, link)
    post = await bot.studio.store.post(str(message_id))
    if post is None:
        raise StudioError("That message isn't an Atelier image: link a result or a posted image.")
    index = (number - 1) if number is not None else (post.image_index or 0)
    record, png = await bot.studio.finishing.image(requester_of(interaction), post.generation_id, index)
    flagged = await bot.studio.store.policy.flagged_indices(post.generation_id)  # content policy
    if index in flagged and not age_restricted(interaction.channel):
        raise StudioError(withheld_sentence([index], "not finished here"))
    return png, record


class FinishCog(commands.Cog, name="Finish"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    async def _send_image(
        self, interaction: discord.Interaction[Any], content: str, png: bytes, name: str, **kw: Any
    ) -> discord.Message:
        """Post into this channel, re-encoded to fit Discord's limit when need be (full size is kept)."""
        channel = interaction.channel
        assert isinstance(channel, discord.abc.Messageable)

        async def post(files: list[FittedFile]) -> discord.Message:
            refitted = any(file.refitted for file in files)
            note = " · re-encoded to fit Discord; the full-size file is kept" if refitted else ""
            return await channel.send(content + note, files=files, allowed_mentions=render.NO_PINGS, **kw)

        return await send_images(self.bot, [Picture(png, name)], post, interaction=interaction)

    # /upscale

    @app_commands.command(name="upscale", description="Upscale an image 2x or 4x")
    @app_commands.describe(
        image="The image to upscale",
        link="Or a link to an Atelier image",
        number="Which image of a grid (1-8)",
        factor="2x or 4x (default 2x)",
    )
    @app_commands.choices(
        factor=[app_commands.Choice(name="2x", value=2), app_commands.Choice(name="4x", value=4)]
    )
    async def upscale(
        self,
        interaction: discord.Interaction[AtelierBot],
        image: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, 200] | None = None,
        number: app_commands.Range[int, 1, 8] | None = None,
        factor: app_commands.Choice[int] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        png, record = await source_image(self.bot, interaction, image, link, number)
        times = factor.value if factor else 2
        finishing = self.bot.studio.finishing
        finish = await finishing.upscale(
            await finishing.prepare_upscale(requester_of(interaction), png, times, record)
        )
        _, full = await finishing.finish(requester_of(interaction), finish.id)
        assert full is not None
        await self._send_image(
            interaction,
            upscale_caption(finish.method, times, finish.width, finish.height),
            full,
            f"upscaled-{finish.id[:8]}",
        )
        await reply(interaction, f"Upscaled {times}× — posted here (result id `{finish.id}`).")

    # /inpaint

    @app_commands.command(
        name="inpaint", description="Repaint part of an image: a mask (white = repaint) or a box"
    )
    @app_commands.describe(
        prompt="What the repainted area should show",
        image="The image",
        link="Or a link to an Atelier image",
        number="Which image of a grid (1-8)",
        mask="A black-and-white mask the image's size (white = repaint)",
        box="Or a box in percent: x,y,w,h (e.g. 25,25,50,50)",
        strength="How much the area changes: 0.05 keeps it, 1 repaints it (default 0.95)",
    )
    async def inpaint(
        self,
        interaction: discord.Interaction[AtelierBot],
        prompt: app_commands.Range[str, 1, 6000],
        image: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, 200] | None = None,
        number: app_commands.Range[int, 1, 8] | None = None,
        mask: discord.Attachment | None = None,
        box: app_commands.Range[str, 1, 60] | None = None,
        strength: app_commands.Range[float, 0.05, 1.0] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        studio = self.bot.studio
        png, record = await source_image(self.bot, interaction, image, link, number)
        mask_bytes = await read_upload(mask, studio.settings.max_upload_bytes) if mask else None
        cleaned = render.strip_mentions(prompt)
        plan = await studio.finishing.prepare_inpaint(
            requester, cleaned, png, mask_bytes, box, Draft(strength=strength), parent=record
        )
        target, project = await project_target(
            self.bot, interaction, requester, plan.recipe.prompt, command="/inpaint"
        )
        generation = await studio.generations.start(plan, project=project, deliver_to=str(target.id))
        self.bot.remember_limit(interaction)
        await post_status(self.bot, target, generation)
        await reply(interaction, f"Repainting — follow along in {target.mention}.")

    # /grade

    @app_commands.command(name="grade", description="Colour grading and effects, with a before/after preview")
    @app_commands.describe(
        image="The image",
        link="Or a link to an Atelier image",
        number="Which image of a grid (1-8)",
        preset="A look to start from",
        **{name: slider.hint for name, slider in GRADE_SLIDERS.items()},
    )
    @app_commands.choices(
        preset=[app_commands.Choice(name=f"{k} — {v}"[:100], value=k) for k, v in GRADE_PRESETS.items()]
    )
    async def grade(
        self,
        interaction: discord.Interaction[AtelierBot],
        image: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, 200] | None = None,
        number: app_commands.Range[int, 1, 8] | None = None,
        preset: app_commands.Choice[str] | None = None,
        exposure: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        temperature: float = 0.0,
        tint: float = 0.0,
        grain: float = 0.0,
        vignette: float = 0.0,
        sharpen: float = 0.0,
        blur: float = 0.0,
    ) -> None:
        # The sliders' values by their one declaration (the parameters above must be written out
        # for discord.py; tests/unit/test_grade_sliders.py holds them to GRADE_SLIDERS).
        sliders = {name: value for name, value in locals().items() if name in GRADE_SLIDERS}
        await interaction.response.defer(ephemeral=True, thinking=True)
        grade = Grade(preset=preset.value if preset else None, **sliders)
        if grade.is_identity:
            raise InvalidRecipe(
                "grade", "Choose a preset or move at least one slider: this grade changes nothing."
            )
        png, record = await source_image(self.bot, interaction, image, link, number)
        finishing = self.bot.studio.finishing
        finish = await finishing.preview_grade(
            await finishing.prepare_grade(requester_of(interaction), png, grade, record)
        )
        preview = await finishing.preview_png(finish)
        await self._send_image(
            interaction, grade_caption(grade), preview, f"grade-{finish.id[:8]}", view=grade_view(finish.id)
        )
        await reply(interaction, "Preview posted: **Apply** makes it full size, **Adjust** changes it.")

    async def apply_grade(self, interaction: discord.Interaction[Any], finish_id: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        finish = await self.bot.studio.finishing.apply_grade(requester, finish_id)
        _, full = await self.bot.studio.finishing.finish(requester, finish.id)
        assert full is not None
        grade = Grade.model_validate_json(finish.params_json)
        await self._send_image(
            interaction, "🎨 Graded · " + grade_caption(grade, short=True), full, f"graded-{finish.id[:8]}"
        )
        await reply(interaction, f"Applied (result id `{finish.id}`).")

    async def adjust_grade(self, interaction: discord.Interaction[Any], finish_id: str) -> None:
        _, grade = await self.bot.studio.finishing.grade_of(requester_of(interaction), finish_id)
        await interaction.response.send_modal(AdjustModal(self, finish_id, grade))

    async def regrade(
        self, interaction: discord.Interaction[Any], finish_id: str, grade: Grade, said: dict[str, str]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        changes: dict[str, Any] = {}
        for name, text in said.items():
            if name == "preset":
                changes[name] = text.strip() or None
                continue
            try:
                changes[name] = float(text.strip() or 0)
            except ValueError:
                raise InvalidRecipe(name, f"`{name}` needs a number (got `{text[:20]}`).") from None
        finishing = self.bot.studio.finishing
        plan = await finishing.prepare_regrade(requester, finish_id, changes)
        adjusted = plan.grade
        new = await finishing.preview_grade(plan)
        preview = await finishing.preview_png(new)
        await self._send_image(
            interaction, grade_caption(adjusted), preview, f"grade-{new.id[:8]}", view=grade_view(new.id)
        )
        await reply(interaction, "New preview posted.")


def grade_caption(grade: Grade, short: bool = False) -> str:
    parts = [grade.preset] if grade.preset else []
    parts += [
        f"{name} {value:+g}" if GRADE_SLIDERS[name].signed else f"{name} {value:g}"
        for name, value in grade.sliders.items()
        if value
    ]
    text = ", ".join(parts) or "no change"
    return text if short else f"🎨 Before / after · {text}"


class ExportCog(commands.GroupCog, name="export", description="Images sized and encoded for where they go"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="image", description="Export one image for a destination (size, crop, format)")
    @app_commands.describe(
        preset="Where it goes",
        image="The image",
        link="Or a link to an Atelier image",
        number="Which image of a grid",
        format="File format (default: the destination's usual one)",
        focus_x="Crop around this point: x in percent",
        focus_y="…and y in percent (default: the centre of interest)",
        max_kb="Largest file size in KB",
        metadata="Keep the recipe in the file (default yes)",
    )
    @app_commands.choices(
        preset=[
            app_commands.Choice(name=f"{p.name} — {p.width}×{p.height}", value=p.name)
            for p in EXPORT_PRESETS.values()
        ],
        format=[app_commands.Choice(name=f, value=f) for f in FORMATS],
    )
    async def image(
        self,
        interaction: discord.Interaction[AtelierBot],
        preset: app_commands.Choice[str],
        image: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, 200] | None = None,
        number: app_commands.Range[int, 1, 8] | None = None,
        format: app_commands.Choice[str] | None = None,
        focus_x: float | None = None,
        focus_y: float | None = None,
        max_kb: int | None = None,
        metadata: bool = True,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        spec = ExportSpec(
            preset=preset.value,
            format=format.value if format else None,
            focus_x=focus_x,
            focus_y=focus_y,  # type: ignore[arg-type]
            max_kb=max_kb,
            keep_metadata=metadata,
        )
        png, record = await source_image(self.bot, interaction, image, link, number)
        finishing = self.bot.studio.finishing
        exported = await finishing.export(
            await finishing.prepare_export(requester_of(interaction), png, spec, record)
        )
        await self._send_file(
            interaction,
            exported.data,
            exported.filename,
            export_caption(spec, exported.quality, len(exported.data)),
            exported.finish.id,
        )

    @app_commands.command(name="pack", description="Zip your favourites of this project in up to 4 presets")
    @app_commands.describe(
        presets="Preset names separated by commas, e.g. instagram-square, x-post", format="File format"
    )
    @app_commands.choices(format=[app_commands.Choice(name=f, value=f) for f in FORMATS])
    async def pack(
        self,
        interaction: discord.Interaction[AtelierBot],
        presets: app_commands.Range[str, 1, 200],
        format: app_commands.Choice[str] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel = interaction.channel
        project = (
            await self.bot.studio.store.project_by_thread(str(channel.id))
            if isinstance(channel, discord.Thread)
            else None
        )
        if project is None:
            raise StudioError(
                "A pack is made of a project's favourites: use it inside an Atelier project thread."
            )
        names = [n.strip().lower() for n in presets.replace(" ", ",").split(",") if n.strip()]
        specs = [ExportSpec(preset=name, format=format.value if format else None) for name in names]  # type: ignore[arg-type]
        data, count = await self.bot.studio.finishing.export_pack(requester_of(interaction), project, specs)
        await self._send_file(
            interaction,
            data,
            f"atelier-pack-{project.id[:8]}.zip",
            f"📦 {count} files ({', '.join(names)})",
            None,
        )

    @app_commands.command(name="presets", description="The export presets and their sizes")
    async def presets(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        lines = [
            f"`{p.name}` — {p.width}×{p.height} {p.format.upper()} · {p.description}"
            for p in EXPORT_PRESETS.values()
        ]
        await reply(interaction, "**Export presets**\n" + "\n".join(lines))

    async def _send_file(
        self,
        interaction: discord.Interaction[Any],
        data: bytes,
        filename: str,
        caption: str,
        finish_id: str | None,
    ) -> None:
        self.bot.remember_limit(interaction)
        limit = self.bot.upload_limit(interaction.guild)
        if len(data) > limit:
            where = f" It is kept as result `{finish_id}` for the REST API." if finish_id else ""
            raise StudioError(
                f"`{filename}` is {len(data) / 1_048_576:.1f} MiB, above this server's upload limit of "
                f"{limit / 1_048_576:.0f} MiB.{where} Try a smaller preset, a lossy format or max_kb."
            )
        await interaction.followup.send(
            caption, file=discord.File(io.BytesIO(data), filename), ephemeral=True
        )


def export_caption(spec: ExportSpec, quality: int | None, size: int) -> str:
    target = spec.target
    made = f"{target.width}×{target.height} {spec.chosen_format.upper()}, {size / 1024:.0f} KB"
    if quality is not None:
        made += f" (quality {quality})"
    meta = "recipe kept" if spec.keep_metadata else "metadata stripped"
    return f"📤 {target.name} · {made} · {meta}"
