"""/train and /models: decode Discord input, call the Forge's use cases, render the outcome."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.choices import base_model_choices, lora_choices
from bot.exts.forge._render import base_embed
from bot.interactions import reply
from bot.links import attachments_withheld, linked_attachments, linked_message, looks_like_image, read_upload
from bot.projects import new_project_thread, requester_of
from bot.ui.images import FittedFile, Picture, age_restricted, send_images
from bot.ui.training import lora_embed
from studio.entities import Project
from studio.errors import DatasetRejected, StudioError, UnknownModel
from studio.forge import TrainingRequest
from studio.lora_import import FAMILY_NAMES, FORMAT_NAMES, SUPPORTED_FAMILIES, check_not_pickle
from studio.model_listing import summaries
from studio.models import LoraImport
from studio.training import FAMILY_TRAINING, TrainingImage, TrainingOptions

if TYPE_CHECKING:
    from bot.app import AtelierBot

MAX_LINKED_IMAGES = 10  # a Discord message holds at most 10 attachments
SET_MENU = "Add to training set"


class ForgeCog(commands.Cog, name="Forge"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self.set_menu = app_commands.ContextMenu(name=SET_MENU, callback=self.add_to_set)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.set_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.set_menu.name, type=self.set_menu.type)

    async def add_to_set(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """The "Add to training set" message menu: that message's images join the person's set.

        A context menu's target message comes in full even without the Message Content intent,
        so this works on anyone's message, where a pasted link cannot."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        await self.bot.studio.forge.check_may_train(requester)  # before any download
        limit = self.bot.studio.settings.max_upload_bytes
        found = [a for a in message.attachments if looks_like_image(a)][:MAX_LINKED_IMAGES]
        images = [TrainingImage(await read_upload(a, limit), a.description) for a in found]
        count = await self.bot.studio.training_sets.add(requester, images)
        await reply(
            interaction,
            f"Added {len(images)} image(s) to your training set; it holds {count}. "
            "Train on it with `/train source: my training set`.",
        )

    @app_commands.command(
        name="train", description="Train a LoRA on your images: a consistent character or style"
    )
    @app_commands.describe(
        name="The model's name (letters, digits, _ and -), used as lora:NAME",
        trigger="A rare word that will call up the subject in prompts, e.g. ohwx",
        source="Where the images come from (default: the attached images)",
        image1="An image of the subject (the alt text, if any, is its caption)",
        link="A link to a message with images of the subject",
        steps="Training steps (default per model family, e.g. 800)",
        rank="LoRA rank: capacity of the adapter (default 16)",
        learning_rate="Learning rate (default 1e-4)",
        resolution="Training resolution in pixels (default: the model's native size)",
        base_model="The base model to train on",
        text_encoder="Also train the text encoder (stronger, less flexible)",
        visibility="Who may use the model: only you, or everyone on this server",
        new_version="Train a new version of a model of yours with this name",
        caption="Captions: the images' alt text (default), or auto: the describe model writes missing ones",
    )
    @app_commands.choices(
        source=[
            app_commands.Choice(name="attached images", value="attachments"),
            app_commands.Choice(name="my favourites in this project", value="favourites"),
            app_commands.Choice(name="this project's mood board", value="board"),
            app_commands.Choice(name=f"my training set (“{SET_MENU}” on messages)", value="set"),
        ],
        visibility=[
            app_commands.Choice(name="private (only me)", value="private"),
            app_commands.Choice(name="this server", value="server"),
        ],
        caption=[
            app_commands.Choice(name="alt text", value="alt"),
            app_commands.Choice(name="auto (describe the images without alt text)", value="auto"),
        ],
    )
    async def train(
        self,
        interaction: discord.Interaction[AtelierBot],
        name: app_commands.Range[str, 1, 100],
        trigger: app_commands.Range[str, 1, 100],
        source: app_commands.Choice[str] | None = None,
        image1: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        image6: discord.Attachment | None = None,
        image7: discord.Attachment | None = None,
        image8: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, 200] | None = None,
        steps: int | None = None,
        rank: int | None = None,
        learning_rate: float | None = None,
        resolution: int | None = None,
        base_model: str | None = None,
        text_encoder: bool | None = None,
        visibility: app_commands.Choice[str] | None = None,
        new_version: bool = False,
        caption: app_commands.Choice[str] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        forge = self.bot.studio.forge
        requester = requester_of(interaction)
        await forge.check_may_train(requester)  # before any download
        limit = self.bot.studio.settings.max_upload_bytes
        attached = [a for a in (image1, image2, image3, image4, image5, image6, image7, image8) if a]
        uploads = [TrainingImage(await read_upload(a, limit), a.description) for a in attached]
        if link:
            found = await linked_attachments(self.bot, interaction, link, MAX_LINKED_IMAGES, SET_MENU)
            uploads += [TrainingImage(await read_upload(a, limit), a.description) for a in found]
        chosen = source.value if source else "attachments"
        if chosen != "attachments" and uploads:
            what = "training set" if chosen == "set" else chosen
            raise DatasetRejected(f"Attach images, or choose the {what} as the source — not both.")
        project = await self._project_here(interaction)
        from_set = chosen == "set"
        if from_set:  # the set's images stand in for attachments
            uploads, chosen = await self.bot.studio.training_sets.images(requester), "attachments"
        images = await forge.dataset(requester, chosen, project, uploads)  # type: ignore[arg-type]
        if caption is not None and caption.value == "auto":  # studio.describe: [describe] captions
            images = await self.bot.studio.describer.fill_captions(images)
        request = TrainingRequest(
            name=name,
            trigger=trigger,
            base_model=base_model,
            options=TrainingOptions(
                steps=steps,
                rank=rank,
                learning_rate=learning_rate,
                resolution=resolution,
                text_encoder=text_encoder,
            ),
            visibility="server" if visibility and visibility.value == "server" else "private",
            new_version=new_version,
        )
        plan = await forge.plan(requester, request, images)
        if project is not None and isinstance(interaction.channel, discord.Thread):
            target: discord.Thread = interaction.channel
        else:
            channel = interaction.channel
            if not isinstance(channel, discord.TextChannel):
                raise StudioError("Use /train in a server text channel or in an Atelier project thread.")
            title = f"Training {plan.name}"
            private = plan.visibility == "private"
            target, project = await new_project_thread(
                self.bot, channel, interaction.user, requester, title, private
            )
        lora = await forge.start(requester, plan, project, deliver_to=str(target.id))
        if from_set:  # the run holds its own copy of the images: the set starts over
            await self.bot.studio.training_sets.clear(requester)
        self.bot.remember_limit(interaction)
        await self.bot.training.post_status(target, lora)
        lines = [
            f"Training `{plan.name}` v{plan.version} on {len(plan.images)} images "
            f"({plan.params.steps} steps, rank {plan.params.rank}, {plan.params.resolution} px) — "
            f"follow along in {target.mention}."
        ]
        if from_set:
            lines.append("Your training set is empty again, ready for the next model.")
        lines += [f"⚠️ {warning}" for warning in plan.warnings]
        await reply(interaction, "\n".join(lines))

    async def _project_here(self, interaction: discord.Interaction[Any]) -> Project | None:
        channel = interaction.channel
        if isinstance(channel, discord.Thread):
            return await self.bot.studio.store.project_by_thread(str(channel.id))
        return None

    @train.autocomplete("base_model")
    async def base_model_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        trainable = (model for model in self.bot.studio.catalogue if model.family in FAMILY_TRAINING)
        return base_model_choices(trainable, current)


class ModelsCog(commands.GroupCog, name="models", description="Base models and custom LoRA models"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="list", description="The base models and the LoRAs you can use")
    async def list_models(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        found = await self.bot.studio.models.available(requester_of(interaction))
        lines = ["**Base models** (`model:` or `--model`)"]
        for model in await summaries(found.base):  # family, source kind, hash, defaults, switches
            shown_hash = f"`{model.model_hash}`" if model.model_hash else None
            description = render.quote(model.entry.description, 100)
            lines.append(f"• `{model.entry.id}` — {model.details(shown_hash)} · {description}")
        lines.append("**LoRA models** (`lora:` or `--lora name:0.8`)")
        if not found.loras:
            lines.append("None yet: train one with `/train`.")
        for lora in found.loras[:30]:
            shared = "private" if lora.visibility == "private" else "server"
            lines.append(
                f"• `{lora.name}` v{lora.version} — trigger `{lora.trigger}` · {lora.base_model} · "
                f"by {render.credit(lora.owner_id)} · {shared}"
            )
        if len(found.loras) > 30:
            lines.append(f"…and {len(found.loras) - 30} more: `/models info name` works for any of them.")
        await reply(interaction, "\n".join(lines))

    @app_commands.command(name="info", description="A model's details and sample image")
    @app_commands.describe(name="A base model or a LoRA")
    async def info(
        self, interaction: discord.Interaction[AtelierBot], name: app_commands.Range[str, 1, 100]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        try:
            entry = self.bot.studio.catalogue.get(name)
        except UnknownModel:
            entry = None
        if entry is not None:
            embed = base_embed(entry)
            shown_here = age_restricted(interaction.channel)  # a flagged sample only there
            sample = await self.bot.studio.community.sample_of_model(requester, entry.id, shown_here)
        else:
            lora = await self.bot.studio.models.lora(requester, name)
            embed = lora_embed(lora)
            shown = lora.comparison or lora.sample
            sample = await self.bot.studio.artifacts.read(shown) if shown else None
        if sample is None:
            embed.set_footer(text="No sample image yet.")

        async def answer(files: list[FittedFile]) -> None:
            for file in files:  # the embed shows the file under the name it is sent with
                embed.set_image(url=f"attachment://{file.filename}")
            await interaction.followup.send(
                embed=embed, files=files, ephemeral=True, allowed_mentions=render.NO_PINGS
            )

        pictures = [Picture(sample, f"{name}-sample")] if sample is not None else []
        await send_images(self.bot, pictures, answer, interaction=interaction)

    @app_commands.command(
        name="delete", description="Delete one of your LoRA models (admins: any on this server)"
    )
    @app_commands.describe(name="The LoRA to delete (all its versions)")
    async def delete(
        self, interaction: discord.Interaction[AtelierBot], name: app_commands.Range[str, 1, 100]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        removed = await self.bot.studio.models.delete(requester_of(interaction), name)
        versions = ", ".join(f"v{lora.version}" for lora in removed)
        await reply(
            interaction, f"Deleted `{removed[0].name}` ({versions}). Existing images keep their recipes."
        )

    @app_commands.command(name="export", description="Download a LoRA's weights (safetensors)")
    @app_commands.describe(name="The LoRA", format="diffusers (load_lora_weights) or kohya (A1111, ComfyUI)")
    @app_commands.choices(
        format=[
            app_commands.Choice(name="kohya (A1111, ComfyUI, Forge)", value="kohya"),
            app_commands.Choice(name="diffusers / peft", value="diffusers"),
        ]
    )
    async def export(
        self,
        interaction: discord.Interaction[AtelierBot],
        name: app_commands.Range[str, 1, 100],
        format: app_commands.Choice[str] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        self.bot.remember_limit(interaction)
        fmt = format.value if format else "kohya"
        filename, data = await self.bot.studio.models.export(requester_of(interaction), name, fmt)
        limit = self.bot.upload_limit(interaction.guild)
        if len(data) > limit:
            raise StudioError(
                f"`{filename}` is {len(data) / 1_048_576:.1f} MiB, above this server's upload limit of "
                f"{limit / 1_048_576:.0f} MiB. Fetch it with `atelier models export {name}` on the server."
            )
        await interaction.followup.send(
            f"`{filename}` ({len(data) / 1024:.0f} KiB, {fmt} format).",
            file=discord.File(io.BytesIO(data), filename),
            ephemeral=True,
        )

    @app_commands.command(
        name="import", description="Add a LoRA made elsewhere (.safetensors: kohya, diffusers, peft)"
    )
    @app_commands.describe(
        name="The model's name (letters, digits, _ and -), used as lora:NAME",
        base_model="The base model it goes with (its family must match the LoRA's)",
        file="The LoRA file (.safetensors)",
        link="Or a link to a message with the file (your own message that mentions me, or mine)",
        trigger="Trigger words (default: from the file's training metadata)",
        visibility="Who may use the model: only you, or everyone on this server",
    )
    @app_commands.choices(
        visibility=[
            app_commands.Choice(name="private (only me)", value="private"),
            app_commands.Choice(name="this server", value="server"),
        ]
    )
    async def import_lora(
        self,
        interaction: discord.Interaction[AtelierBot],
        name: app_commands.Range[str, 1, 100],
        base_model: str,
        file: discord.Attachment | None = None,
        link: app_commands.Range[str, 1, 200] | None = None,
        trigger: app_commands.Range[str, 1, 200] | None = None,
        visibility: app_commands.Choice[str] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        models = self.bot.studio.models
        requester = requester_of(interaction)
        shared: Literal["private", "server"] = (
            "server" if visibility and visibility.value == "server" else "private"
        )
        await models.check_may_import(requester, shared)  # before any download
        if (file is None) == (link is None):
            raise StudioError("Attach the LoRA file, or give a link to a message with it (one of the two).")
        attachment = file or await self._linked_lora(interaction, link or "")
        check_not_pickle(b"", attachment.filename)  # refused by its name, never downloaded
        models.check_import_size(attachment.size)  # before a byte is downloaded
        request = LoraImport(
            data=await attachment.read(),
            name=name,
            base_model=base_model,
            filename=attachment.filename,
            trigger=trigger,
            visibility=shared,
        )
        lora, found = await models.import_lora(requester, request)
        words = f"trigger words `{lora.trigger}`" if lora.trigger else "no trigger words in the file"
        await reply(
            interaction,
            f"Imported `{lora.name}`: a {FORMAT_NAMES[found.format]} LoRA for {FAMILY_NAMES[lora.family]} "
            f"(rank {found.rank}, {found.modules} layers) on `{lora.base_model}`, {words}, "
            f"{'shared with this server' if lora.visibility == 'server' else 'private'}. "
            f"Use it: `/imagine prompt:… lora:{lora.name}`.",
        )

    async def _linked_lora(self, interaction: discord.Interaction[Any], link: str) -> discord.Attachment:
        """The .safetensors (or refused pickle) attachment of a linked message the person may read."""
        message = await linked_message(self.bot, interaction, link)
        channel, user = message.channel, interaction.user
        in_server = isinstance(channel, discord.abc.GuildChannel | discord.Thread)
        if in_server and isinstance(user, discord.Member):
            seen = channel.permissions_for(user)
            if not (seen.view_channel and seen.read_message_history):  # a link alone opens nothing
                raise StudioError("I can't find that message (deleted, or in a channel I can't read).")
        for attachment in message.attachments:
            if attachment.filename.lower().endswith((".safetensors", ".ckpt", ".pt", ".pth", ".bin")):
                return attachment
        if attachments_withheld(self.bot, message):
            raise StudioError(
                "Discord doesn't show apps the files in other people's messages: post the file in a message "
                "that mentions me, or attach it to /models import directly."
            )
        raise StudioError("That message has no .safetensors file.")

    @import_lora.autocomplete("base_model")
    async def import_base_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        importable = (model for model in self.bot.studio.catalogue if model.family in SUPPORTED_FAMILIES)
        return base_model_choices(importable, current)

    @info.autocomplete("name")
    @delete.autocomplete("name")
    @export.autocomplete("name")
    async def name_autocomplete(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await lora_choices(
            self.bot,
            interaction,
            current,
            base=interaction.command is not None and interaction.command.name == "info",
        )
