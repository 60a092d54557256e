"""The generating cog: decode Discord input, call one studio use case, render the outcome."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.choices import base_model_choices, lora_choices
from bot.control import control_ask, control_said
from bot.interactions import reply
from bot.links import read_upload
from bot.pending import Command
from bot.permutations import Permuted, start_permuted, thread_title
from bot.projects import post_status, project_in, requester_of
from bot.references import reference_ask
from bot.ui.captions import upscale_caption
from bot.ui.images import Picture, age_restricted, send_images, withheld_sentence
from bot.ui.outpaint import single_image_view
from bot.ui.weblinks import image_page, studio_base
from studio.entities import Project, Requester
from studio.errors import InvalidRecipe, StudioError, TooManyJobs
from studio.families import ASPECTS
from studio.outpaint import DIRECTIONS, parse_zoom
from studio.recipe import CONTROL_MODES, MAX_SEED, Draft

if TYPE_CHECKING:
    from bot.app import AtelierBot
    from studio.app import Studio

log = logging.getLogger(__name__)
DOUBLE_PRESS_S = 3.0


class GenerateCog(commands.Cog, name="Generate"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self._recent_presses: dict[tuple[int, str, str, int], float] = {}

    async def cog_load(self) -> None:
        self.bot.pending.handle("imagine", self._imagine)
        self.bot.pending.handle("remix", self._remix)
        self.bot.pending.handle("refine", self._refine)

    @property
    def studio(self) -> Studio:
        return self.bot.studio

    # /imagine

    @app_commands.command(
        name="imagine", description="Generate images from a prompt (flags like --ar 3:2 work too)"
    )
    @app_commands.describe(
        prompt="What to see. Inline flags work: --ar 3:2 --no blurry --seed 42 --steps 30 --cfg 6.5",
        negative="What to avoid (negative prompt)",
        model="Model from the catalogue",
        aspect="Aspect ratio",
        batch="How many variations (1-8)",
        seed="Seed of the first image (0-4294967295)",
        steps="Diffusion steps (1-150)",
        guidance="Guidance scale (0-30)",
        private="Keep the images out of community feeds and remixes",
        style="A style preset (see /styles)",
        board="This project's mood board as a style reference (see board_start)",
        board_start="With board: start from the board's collage (img2img) instead",
        sref="A style reference image (adds to --sref board|favourites|link; weight --sw)",
        cref="A character reference image (adds to --cref; weight --cw)",
        lora="Custom LoRA models with weights: mychar:0.8, inkstyle:0.5 (see /models list)",
        control="An image whose structure to follow through a ControlNet (see control_mode)",
        control_mode="What to take from the control image (default canny edges)",
        control_strength="How strongly the control steers (0-2, default 1)",
        control_start="Fraction of the steps where control begins (0-1, default 0)",
        control_end="Fraction of the steps where control ends (0-1, default 1)",
    )
    @app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS])
    @app_commands.choices(control_mode=[app_commands.Choice(name=m, value=m) for m in CONTROL_MODES])
    async def imagine(
        self,
        interaction: discord.Interaction[AtelierBot],
        prompt: app_commands.Range[str, 1, 6000],  # Discord's own cap; ours (2000) answers in words
        negative: app_commands.Range[str, 1, 1000] | None = None,
        model: str | None = None,
        aspect: app_commands.Choice[str] | None = None,
        batch: app_commands.Range[int, 1, 8] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        steps: app_commands.Range[int, 1, 150] | None = None,
        guidance: app_commands.Range[float, 0, 30] | None = None,
        private: bool | None = None,
        style: str | None = None,
        board: bool = False,
        lora: app_commands.Range[str, 1, 300] | None = None,
        board_start: bool = False,
        sref: discord.Attachment | None = None,
        cref: discord.Attachment | None = None,
        control: discord.Attachment | None = None,
        control_mode: app_commands.Choice[str] | None = None,
        control_strength: float | None = None,  # ranges answered in words (studio.control)
        control_start: float | None = None,
        control_end: float | None = None,
    ) -> None:
        said = {
            "prompt": prompt,
            "negative": negative,
            "model": model,
            "aspect": aspect.value if aspect else None,
            "batch": batch,
            "seed": seed,
            "steps": steps,
            "guidance": guidance,
            "private": private,
            "style": style,
            "board": board or None,
            "lora": lora,
            "board_start": board_start or None,
            "sref": sref.to_dict() if sref else None,  # read again on a resume (signed URLs)
            "cref": cref.to_dict() if cref else None,
            **control_said(
                control,
                control_mode.value if control_mode else None,
                control_strength,
                control_start,
                control_end,
            ),
        }
        # Recorded before "thinking…": a bot that stops now finishes it when it is back.
        command = await self.bot.pending.acknowledge(
            interaction, "imagine", {k: v for k, v in said.items() if v is not None}
        )
        if command is not None:
            await self.bot.pending.run(command)

    async def _imagine(self, command: Command) -> None:
        """/imagine's work, live or resumed after a restart (bot/pending.py)."""
        said = command.options
        requester = command.requester
        cleaned = render.strip_mentions(said["prompt"])
        if not cleaned.replace("--", "").strip():
            raise InvalidRecipe(
                "prompt", "The prompt has no words once mentions are removed: describe the image."
            )
        options = Draft.from_options(
            said,
            negative=render.strip_mentions(said["negative"]) if said.get("negative") else None,
            loras=said.get("lora"),  # /imagine's option is `lora`, several as `a:0.8, b:0.5`
        )
        board_in = None
        if said.get("board"):  # the board of the project whose thread this is
            here = await command.channel()
            board_in = str(here.id) if isinstance(here, discord.Thread) else None
        # board: is a style reference; board_start: the collage as img2img start (bot/references.py)
        references = await reference_ask(self.bot, command, await command.channel())
        plans = await Permuted(self.bot, command).prepare(  # `{a, b}`: a plan each (bot/permutations.py)
            requester,
            cleaned,
            options,
            use_defaults=True,
            private=said.get("private"),
            from_board=bool(said.get("board") and said.get("board_start")),
            board_in=board_in,
            references=references,
            control=await control_ask(self.bot, command),  # bot/control.py
        )
        if plans is None:  # asked to confirm first
            return
        if len(plans) > 1:
            await start_permuted(self, command, plans, thread_title(cleaned))
            return
        plan = plans[0]
        channel = await command.channel()
        target, project = await self._target(command, channel, requester, plan.recipe.prompt, plan.private)
        await command.working_in(target)
        try:
            generation = await self.studio.generations.start(
                plan, project=project, deliver_to=str(target.id), generation_id=command.generation_id
            )
        except TooManyJobs as refused:
            # Only concurrent commands get this far (prepare refuses the rest): the new thread
            # says why it stays empty instead of looking broken.
            if target.id != channel.id:
                with contextlib.suppress(discord.HTTPException):
                    await target.send(f"⏸️ Not started: {refused}", allowed_mentions=render.NO_PINGS)
            raise
        command.remember_limit()
        await post_status(self.bot, target, generation)
        await command.answer(f"On it — follow along in {target.mention}.")

    async def _target(
        self,
        command: Command,
        channel: Any,
        requester: Requester,
        title: str,
        private: bool,
        name: str = "/imagine",
    ) -> tuple[discord.Thread, Project]:
        """The project thread: the one a stopped run of this command opened, this one, or a new one."""
        thread = await command.known_thread()
        if thread is not None and thread.id != channel.id:
            project = await self.studio.store.project_by_thread(str(thread.id))
            if project is None:  # stopped between opening the thread and recording its project
                project = await self.studio.projects.open(requester, thread.name, str(thread.id))
            return thread, project
        return await project_in(self.bot, channel, await command.user(), requester, title, private, name)

    @app_commands.command(name="remix", description="Img2img: a new image from your upload and a prompt")
    @app_commands.describe(
        image="The image to start from (PNG, JPEG, WebP)",
        prompt="What it should become (inline flags work)",
        strength="How far from the upload: 0.05 keeps it, 1 ignores it (default 0.6)",
    )
    async def remix(
        self,
        interaction: discord.Interaction[AtelierBot],
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, 6000],
        strength: app_commands.Range[float, 0.05, 1.0] | None = None,
    ) -> None:
        said = {"image": image.to_dict(), "prompt": prompt, "strength": strength}
        command = await self.bot.pending.acknowledge(
            interaction, "remix", {k: v for k, v in said.items() if v is not None}
        )
        if command is not None:
            await self.bot.pending.run(command)

    async def _remix(self, command: Command) -> None:
        """/remix's work, live or resumed (the upload is read again from its signed URL, which
        outlives the 15 minutes a resume has)."""
        said = command.options
        requester = command.requester
        image = discord.Attachment(data=said["image"], state=self.bot._connection)
        data = await read_upload(image, self.studio.settings.max_upload_bytes)
        cleaned = render.strip_mentions(said["prompt"])
        plan = await self.studio.generations.prepare(
            requester, cleaned, Draft(strength=said.get("strength")), upload=data, private=False
        )
        channel = await command.channel()
        target, project = await self._target(command, channel, requester, plan.recipe.prompt, False, "/remix")
        await command.working_in(target)
        generation = await self.studio.generations.start(
            plan, project=project, deliver_to=str(target.id), generation_id=command.generation_id
        )
        command.remember_limit()
        await post_status(self.bot, target, generation)
        await command.answer(f"Remixing your image — follow along in {target.mention}.")

    @imagine.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return base_model_choices(self.studio.catalogue, current)

    @imagine.autocomplete("lora")
    async def lora_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """Completes the last LoRA of a comma-separated list; the ones before it are kept."""
        done, _, last = current.rpartition(",")
        prefix = f"{done.strip()}, " if done.strip() else ""
        name, _, weight = last.strip().partition(":")
        choices = await lora_choices(self.bot, interaction, name)
        return [
            app_commands.Choice(
                name=f"{prefix}{c.value}:{weight or '0.8'}"[:100],
                value=f"{prefix}{c.value}:{weight or '0.8'}"[:100],
            )
            for c in choices
        ]

    @imagine.autocomplete("style")
    async def style_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        needle = current.lower().strip()
        choices = [
            app_commands.Choice(name=f"{style.name} — {style.description}"[:100], value=style.name)
            for style in self.studio.styles
            if needle in f"{style.name} {style.description}".lower()
        ]
        return choices[:25]

    @app_commands.command(name="styles", description="The style presets you can use with /imagine style:")
    async def styles(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        lines = []
        for style in self.studio.styles:
            extras = ", ".join(f"{k} {v}" for k, v in (("model", style.model), ("aspect", style.aspect)) if v)
            lines.append(f"**{style.name}** — {style.description}" + (f" ({extras})" if extras else ""))
        text = "\n".join(lines) if lines else "No style presets are configured on this server."
        await reply(interaction, "**Styles** (use `style:` or `--style name`)\n" + text)

    # Buttons and menus (see _views.py)

    def _double_press(
        self, interaction: discord.Interaction[Any], action: str, generation_id: str, index: int
    ) -> bool:
        now = time.monotonic()
        self._recent_presses = {k: t for k, t in self._recent_presses.items() if now - t < DOUBLE_PRESS_S}
        key = (interaction.user.id, action, generation_id, index)
        if key in self._recent_presses:
            return True
        self._recent_presses[key] = now
        return False

    async def on_action(
        self, interaction: discord.Interaction[Any], action: str, generation_id: str, index: int
    ) -> None:
        pressed_twice = self._double_press(interaction, action, generation_id, index)
        if action in ("v", "r") and not pressed_twice:  # they start a generation: resumable
            said = {"action": action, "generation": generation_id, "index": index}
            command = await self.bot.pending.acknowledge(interaction, "refine", said)
            if command is not None:
                await self.bot.pending.run(command)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        if pressed_twice:
            await reply(interaction, "Already on it — that button was just pressed.")
            return
        requester = requester_of(interaction)
        if action == "x":
            await self.studio.generations.cancel(requester, generation_id)
            await reply(interaction, "Cancelling — the status message will say when it has stopped.")
            return
        await self._post_image(interaction, requester, generation_id, index)

    async def check_single(self, interaction: discord.Interaction[Any]) -> None:
        """Vary, Zoom Out and pan start from a posted single image, not a grid."""
        message = interaction.message
        await self.studio.refine.check_single_image(str(message.id) if message else None)

    async def on_edit(
        self,
        interaction: discord.Interaction[Any],
        edit: str,
        generation_id: str,
        index: int,
        value: str | None = None,
    ) -> None:
        """A single image's Vary, Zoom Out or pan button (``value``: its form's box or factor)."""
        await self.check_single(interaction)  # a grid's refusal is no press
        # A form is filled in on purpose (and may be corrected at once); a button may bounce.
        if value is None and self._double_press(interaction, f"e:{edit}", generation_id, index):
            await interaction.response.defer(ephemeral=True, thinking=True)
            await reply(interaction, "Already on it — that button was just pressed.")
            return
        message = interaction.message
        said = {
            "action": "e",
            "edit": edit,
            "generation": generation_id,
            "index": index,
            "message": str(message.id) if message else None,
            "value": value,
        }
        command = await self.bot.pending.acknowledge(interaction, "refine", said)
        if command is not None:
            await self.bot.pending.run(command)

    async def _refine(self, command: Command) -> None:
        """V (variations of image n), 🔁 (reroll) and a single image's edits (bot/ui/outpaint.py),
        live or resumed after a restart."""
        said = command.options
        requester, source, index = command.requester, str(said["generation"]), int(said["index"])
        channel = await command.channel()
        if said["action"] == "e":
            await self._edit(command, channel, said)
            return
        await command.working_in(channel)
        if said["action"] == "v":
            plan = await self.studio.refine.prepare_vary(requester, source, index)
        else:
            plan = await self.studio.refine.prepare_reroll(requester, source)
        generation = await self.studio.generations.start(
            plan, deliver_to=str(channel.id), generation_id=command.generation_id
        )
        await post_status(self.bot, channel, generation)
        what = f"Variations of image {index + 1}" if said["action"] == "v" else "Rerolling with new seeds"
        await command.answer(f"{what} — queued.")

    async def _edit(self, command: Command, channel: Any, said: dict[str, Any]) -> None:
        requester, source, index = command.requester, str(said["generation"]), int(said["index"])
        refine = self.studio.refine
        await refine.check_single_image(said.get("message"))
        edit, value = str(said["edit"]), said.get("value")
        if edit in ("subtle", "strong"):
            plan = await refine.prepare_vary_intent(
                requester, source, index, "subtle" if edit == "subtle" else "strong"
            )
        elif edit == "region":
            plan = await refine.prepare_region(requester, source, index, str(value or ""))
        elif edit in ("z1.5", "z2", "zoom"):
            factor = parse_zoom(str(value or "")) if edit == "zoom" else float(edit[1:])
            plan = await refine.prepare_outpaint(requester, source, index, zoom=factor)
        elif edit in DIRECTIONS:
            plan = await refine.prepare_outpaint(requester, source, index, pan=edit)
        else:
            raise StudioError("That button is not one I know any more.")
        await command.working_in(channel)
        generation = await self.studio.generations.start(
            plan, deliver_to=str(channel.id), generation_id=command.generation_id
        )
        await post_status(self.bot, channel, generation)
        what = (plan.recipe.edit or edit).capitalize()
        await command.answer(f"{what} of image {index + 1} — queued.")

    async def _post_image(
        self, interaction: discord.Interaction[Any], requester: Requester, generation_id: str, index: int
    ) -> None:
        """U: image n upscaled 2x and posted on its own (the full-size file is kept)."""
        finishing = self.studio.finishing
        image, source = await finishing.own_image(requester, generation_id, index)
        flagged = await self.studio.store.policy.flagged_indices(generation_id)  # content policy
        if index in flagged and not age_restricted(interaction.channel):
            raise StudioError(withheld_sentence([index], "not posted here"))
        finish = await finishing.upscale(await finishing.prepare_upscale(requester, source, 2, image))
        _, png = await finishing.finish(requester, finish.id)
        assert png is not None
        channel = interaction.channel
        assert isinstance(channel, discord.abc.Messageable)
        caption = upscale_caption(finish.method, 2, finish.width, finish.height).removeprefix("⬆️ ")
        content = f"Image {index + 1} · seed {image.seed} · {caption} · react {render.STAR} to favourite"
        page = image_page(studio_base(self.bot.settings.api_public_url), image.server, generation_id, index)
        message = await send_images(
            self.bot,
            [Picture(png, f"atelier-{image.seed}")],
            lambda files: channel.send(
                content, files=files, view=single_image_view(generation_id, index, page)
            ),
            interaction=interaction,
        )
        await self.studio.store.add_post(
            str(message.id), str(message.channel.id), generation_id, "image", index
        )
        await reply(interaction, f"Posted image {index + 1}, upscaled 2× (result id `{finish.id}`).")

    async def on_favourites(
        self, interaction: discord.Interaction[Any], generation_id: str, count: int, picked: list[int]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        for index in range(count):
            await self.studio.refine.set_favourite(requester, generation_id, index, index in picked)
        chosen = ", ".join(str(i + 1) for i in picked) or "none"
        await reply(interaction, f"Your favourites in this batch: {chosen}.")
