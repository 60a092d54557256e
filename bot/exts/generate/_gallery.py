"""Favourites, lineage and status: reactions, /favourites, /lineage, "Show recipe", /status."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.delivery import queue_eta
from bot.interactions import reply
from bot.links import parse_link
from bot.projects import requester_of
from studio import jobs
from studio.entities import Requester
from studio.errors import StudioError
from studio.quotas import status_line
from studio.routing import worker_lines

if TYPE_CHECKING:
    from bot.app import AtelierBot
    from studio.app import Studio

log = logging.getLogger(__name__)
RECIPE_INLINE = 1200  # longer recipe text goes in a file: the answer must stay under 2000 chars


class GalleryCog(commands.Cog, name="Gallery"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        # Context menus cannot be declared inside a cog; they are added to the tree by hand.
        self.show_recipe = app_commands.ContextMenu(name="Show recipe", callback=self.show_recipe_menu)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.show_recipe)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.show_recipe.name, type=self.show_recipe.type)

    @property
    def studio(self) -> Studio:
        return self.bot.studio

    # Reactions: 1️⃣…8️⃣ on a result pick tile n, ⭐ on a single image picks it.

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, on=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload, on=False)

    async def _reaction(self, payload: discord.RawReactionActionEvent, on: bool) -> None:
        if self.bot.user is not None and payload.user_id == self.bot.user.id:
            return
        emoji = str(payload.emoji)
        if emoji not in render.KEYCAPS and emoji != render.STAR:
            return
        try:
            post = await self.studio.store.post(str(payload.message_id))
            if post is None:
                return
            if post.kind == "image" and emoji == render.STAR and post.image_index is not None:
                index = post.image_index
            elif post.kind in ("status", "share") and emoji in render.KEYCAPS:
                index = render.KEYCAPS.index(emoji)
            else:
                return
            generation = await self.studio.store.get_generation(post.generation_id)
            if index >= generation.recipe.batch or generation.status != "done":
                return
            name = payload.member.display_name if payload.member else str(payload.user_id)
            requester = Requester(id=f"discord:{payload.user_id}", name=name)
            await self.studio.refine.set_favourite(requester, post.generation_id, index, on)
        except StudioError as error:
            log.info("reaction by %s ignored: %s", payload.user_id, error)
        except Exception:
            log.exception("reaction by %s on %s failed", payload.user_id, payload.message_id)

    # /favourites and /status

    @app_commands.command(name="favourites", description="Your favourite images in this project")
    async def favourites(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        project = None
        if isinstance(interaction.channel, discord.Thread):
            project = await self.studio.store.project_by_thread(str(interaction.channel.id))
        images = await self.studio.refine.favourites(requester, project.id if project else None)
        if not images:
            where = "in this project" if project else "yet"
            await reply(interaction, f"No favourites {where}: react 1️⃣–8️⃣ on a result, or use its ⭐ menu.")
            return
        lines = []
        for image in images[:30]:
            posts = await self.studio.store.posts_of(image.generation_id)
            link = render.where_shown(posts, image.index, interaction.guild_id)
            prompt = render.quote(image.recipe.prompt, 60)
            lines.append(f"⭐ image {image.index + 1} · seed {image.seed} · {prompt} — {link}")
        title = "Your favourites in this project" if project else "Your favourites"
        await reply(interaction, f"**{title}**\n" + "\n".join(lines))

    @app_commands.command(
        name="lineage", description="An image's recipe and its chain of remixes back to the original"
    )
    @app_commands.describe(
        link="Link to an Atelier result or image message", image="Which image of a batch (1-8)"
    )
    async def lineage(
        self,
        interaction: discord.Interaction[AtelierBot],
        link: app_commands.Range[str, 1, 200],
        image: app_commands.Range[int, 1, 8] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        _, message_id = parse_link(interaction, link)
        await self._lineage_reply(interaction, message_id, image)

    async def show_recipe_menu(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """The "Show recipe" message menu: /lineage for the message it is used on."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self._lineage_reply(interaction, message.id, None)

    async def _lineage_reply(
        self, interaction: discord.Interaction[Any], message_id: int, image: int | None
    ) -> None:
        post = await self.studio.store.post(str(message_id))
        if post is None:
            raise StudioError("I don't know that message: use a result or an image posted by Atelier.")
        index = post.image_index if post.image_index is not None else (image or 1) - 1
        steps = await self.studio.refine.lineage(requester_of(interaction), post.generation_id, index)
        first = steps[0].image
        # The whole recipe or none of it: a cut one would paste as other settings (or not at all).
        text = first.recipe.to_prompt_text()
        recipe = f"Recipe: {render.code(text)}" if len(text) <= RECIPE_INLINE else "Recipe: in recipe.txt"
        lines = [f"🧬 **Image {first.index + 1}** · seed {first.seed}", recipe]
        for depth, step in enumerate(steps):
            last = depth == len(steps) - 1 and not (step.hidden or step.removed)
            arrow = "🌱 original" if last else ("↳" if depth else "•")
            if step.hidden or step.elsewhere or step.removed:
                what = "an image from another server" if step.elsewhere else "a private image"
                what = "a removed image" if step.removed else what
                lines.append(f"{arrow} {what}")
                continue
            where = render.where_shown(step.posts, step.image.index, interaction.guild_id)
            credit = render.credit(step.image.owner_id)
            remixed = f" · remixed {step.remixes}×" if step.remixes else ""
            edit = f" · {step.image.recipe.edit}" if step.image.recipe.edit else ""  # from its parent
            lines.append(
                f"{arrow} image {step.image.index + 1} by {credit}{edit} · "
                f"*{render.quote(step.image.recipe.prompt, 60)}*{remixed} — {where}"
            )
        answer = "\n".join(lines)
        if len(text) <= RECIPE_INLINE:
            await reply(interaction, answer)
        else:
            await interaction.followup.send(
                answer[:2000],
                file=discord.File(io.BytesIO(text.encode()), "recipe.txt"),
                ephemeral=True,
                allowed_mentions=render.NO_PINGS,
            )

    @app_commands.command(name="status", description="Queue depth, live workers and your own jobs")
    async def status(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        requester = requester_of(interaction)
        depth = await self.studio.queue.depth(jobs.INFERENCE)
        workers = await self.studio.queue.live_workers()
        mine = await self.studio.store.in_flight(requester.id)
        lines = [
            f"**Queue:** {depth} job{'s' if depth != 1 else ''} waiting or running",
            "**Workers:** " + ", ".join(f"{count} {kind}" for kind, count in workers.items()),
            *worker_lines(await self.studio.generations.routing.adverts()),  # model-aware routing
            f"**Your jobs:** {len(mine)} of {self.studio.settings.max_jobs_per_user} allowed at once",
            status_line(await self.studio.quotas.standing(requester)),
            render.lane_line(await self.studio.preferences.lane_for(requester)),
        ]
        for generation in mine:
            posts = await self.studio.store.posts_of(generation.id)
            link = next(
                (render.jump_link(interaction.guild_id, p.channel_id, p.message_id) for p in posts), ""
            )
            place = await self.studio.queue.position(jobs.INFERENCE, generation.id)
            eta = await queue_eta(self.studio, place) if generation.status == "queued" else None
            lines.append(
                f"• {generation.status}{render.place_in_line(generation.status, place, eta)} · "
                f"{render.quote(generation.recipe.prompt, 60)} {link}"
            )
        await reply(interaction, "\n".join(lines))
