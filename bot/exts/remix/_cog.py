"""/atelier remix-channel add|remove; the Remix button (modal prefilled with the recipe) and 🔀."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.erasing import delete_posts, manages_messages, summary
from bot.interactions import guarded, reply, report
from bot.links import parse_link
from bot.projects import new_project_thread, post_status, requester_of
from bot.ui.images import FittedFile, Picture, send_images
from bot.ui.remix import REMIX, RemixButton
from bot.ui.weblinks import send_studio_links
from studio.entities import Generation, ImageRecord, Requester
from studio.errors import StudioError
from studio.quotas import MAX_ROLE_LIMIT_S, limits_text
from studio.recipe import MAX_PROMPT_CHARS

if TYPE_CHECKING:
    from bot.app import AtelierBot

log = logging.getLogger(__name__)
_POLICY_KINDS = [
    app_commands.Choice(name="word", value="word"),
    app_commands.Choice(name="regex", value="regex"),
]


class RemixModal(discord.ui.Modal, title="Remix"):
    def __init__(self, cog: AtelierCog, image: ImageRecord, text: str) -> None:
        super().__init__(custom_id=f"at:mm:{image.id}", timeout=900)
        self.cog, self.image = cog, image
        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label="Prompt (flags work)",
            style=discord.TextStyle.paragraph,
            default=text[:MAX_PROMPT_CHARS],
            max_length=MAX_PROMPT_CHARS,
            custom_id="at:mm:prompt",
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            await interaction.response.defer(ephemeral=True, thinking=True)
            thread = await self.cog.remix_into_thread(
                interaction.channel,
                interaction.user,
                requester_of(interaction),
                self.image,
                self.prompt.value,
            )
            await reply(interaction, f"Remixing — follow along in {thread.mention}.")

    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]
        await report(interaction, error)


def share_view(generation: Generation) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for index in range(generation.recipe.batch):
        view.add_item(RemixButton(generation.id, index))
    return view


# Discord shows /atelier only to members who may manage the server (admins can grant it to other
# roles in Server Settings → Integrations); each use case still checks the person itself.
@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
class AtelierCog(commands.GroupCog, name="atelier", description="Server settings for Atelier"):
    remix_channel = app_commands.Group(
        name="remix-channel", description="Channels where public results are shared"
    )
    train_roles = app_commands.Group(name="train-roles", description="Which roles may train LoRA models")
    policy = app_commands.Group(name="policy", description="Words and regexes prompts may not use here")
    quota = app_commands.Group(name="quota", description="Daily GPU time per person, by role")

    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        super().__init__()
        self.remix_menu = app_commands.ContextMenu(name="Remix", callback=self.remix_message)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.remix_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.remix_menu.name, type=self.remix_menu.type)

    async def remix_message(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """The "Remix" message menu: the modal, prefilled with that image's recipe."""
        post = await self.bot.studio.store.post(str(message.id))
        if post is None:
            raise StudioError("That message isn't an Atelier image: use Remix on a result or a posted image.")
        await self.open_remix(interaction, post.generation_id, post.image_index or 0)

    async def open_remix(self, interaction: discord.Interaction[Any], generation_id: str, index: int) -> None:
        """The remix form, prefilled with that image's recipe (the Remix button and menu)."""
        # A modal must be the first answer, so only a quick lookup comes before it.
        image = await self.bot.studio.refine.remixable(requester_of(interaction), generation_id, index)
        await interaction.response.send_modal(
            RemixModal(self, image, self.bot.studio.refine.remix_text(image))
        )

    @app_commands.command(
        name="web", description="Open the web studio: this server's gallery and your library"
    )
    async def web(self, interaction: discord.Interaction[AtelierBot]) -> None:
        """As /web, for the managers who look under /atelier (members have /web itself)."""
        await send_studio_links(interaction, self.bot.settings.api_public_url)

    @remix_channel.command(name="add", description="Share public results in this channel (admins)")
    async def add(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await self._set(interaction, on=True)

    @remix_channel.command(name="remove", description="Stop sharing results in this channel (admins)")
    async def remove(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await self._set(interaction, on=False)

    async def _set(self, interaction: discord.Interaction[Any], on: bool) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        if not isinstance(interaction.channel, discord.TextChannel):
            raise StudioError("Use this in the text channel itself (not in a thread).")
        channels = await self.bot.studio.community.set_remix_channel(
            requester_of(interaction), str(interaction.channel.id), on
        )
        listed = ", ".join(f"<#{c}>" for c in channels) or "none"
        await reply(interaction, f"{'Added' if on else 'Removed'}. Remix channels now: {listed}.")

    @train_roles.command(name="add", description="Let this role train models (admins; none set: everyone)")
    @app_commands.describe(role="The role")
    async def train_role_add(self, interaction: discord.Interaction[AtelierBot], role: discord.Role) -> None:
        await self._set_train_role(interaction, role, on=True)

    @train_roles.command(name="remove", description="Stop letting this role train models (admins)")
    @app_commands.describe(role="The role")
    async def train_role_remove(
        self, interaction: discord.Interaction[AtelierBot], role: discord.Role
    ) -> None:
        await self._set_train_role(interaction, role, on=False)

    @train_roles.command(name="list", description="The roles that may train models here")
    async def train_role_list(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        roles = await self.bot.studio.store.loras.training_roles(str(interaction.guild_id))
        listed = ", ".join(f"<@&{r}>" for r in roles) if roles else "everyone (no roles chosen)"
        await reply(interaction, f"May train models here: {listed}. Admins always may.")

    # Content policy: the server's prompt blocklist (studio.policy).

    @policy.command(name="add", description="Block a word or regex in prompts here (Manage Server)")
    @app_commands.describe(kind="A whole word (any case) or a regex", text="The word, phrase or regex")
    @app_commands.choices(kind=_POLICY_KINDS)
    async def policy_add(self, interaction: discord.Interaction[AtelierBot], kind: str, text: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        rule = await self.bot.studio.policy.add(requester_of(interaction), kind, text)
        await reply(interaction, f"Blocked the {rule.kind} {render.code(rule.pattern)} in prompts here.")

    @policy.command(name="remove", description="Unblock a word or regex (Manage Server)")
    @app_commands.describe(kind="A whole word or a regex", text="The word, phrase or regex, as listed")
    @app_commands.choices(kind=_POLICY_KINDS)
    async def policy_remove(self, interaction: discord.Interaction[AtelierBot], kind: str, text: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        removed = await self.bot.studio.policy.remove(requester_of(interaction), kind, text)
        said = "Removed" if removed else "Not on the list"
        await reply(interaction, f"{said}: the {kind} {render.code(text.strip())}.")

    @policy.command(name="list", description="The words and regexes prompts may not use here")
    async def policy_list(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        rules = await self.bot.studio.policy.rules(requester_of(interaction))
        if not rules:
            await reply(interaction, "No words or regexes are blocked here.")
            return
        lines = [f"{rule.kind}: {render.code(rule.pattern)}" for rule in rules]
        await reply(interaction, "Blocked in prompts here:\n" + "\n".join(lines))

    # Quotas: daily GPU-seconds per person; a role's limit (studio.quotas).

    @quota.command(name="set", description="A role's daily GPU-seconds per person (Manage Server)")
    @app_commands.describe(
        role="The role (@everyone: the whole server)", seconds="GPU-seconds a day; 0: unlimited"
    )
    async def quota_set(
        self,
        interaction: discord.Interaction[AtelierBot],
        role: discord.Role,
        seconds: app_commands.Range[int, 0, MAX_ROLE_LIMIT_S],
    ) -> None:
        await self._quota(interaction, str(role.id), seconds)

    @quota.command(name="clear", description="Remove a role's daily limit (Manage Server)")
    @app_commands.describe(role="The role")
    async def quota_clear(self, interaction: discord.Interaction[AtelierBot], role: discord.Role) -> None:
        await self._quota(interaction, str(role.id), None)

    @quota.command(name="show", description="The daily GPU-second limits here")
    async def quota_show(self, interaction: discord.Interaction[AtelierBot]) -> None:
        await self._quota(interaction, None, None)

    async def _quota(
        self, interaction: discord.Interaction[Any], role: str | None, seconds: int | None
    ) -> None:
        """Show the server's limits, after setting (``seconds``) or clearing a ``role``'s."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        quotas, server = self.bot.studio.quotas, str(interaction.guild_id)
        if role is not None:
            limits = await quotas.set_role_limit(requester_of(interaction), role, seconds)
        else:
            limits = await quotas.role_limits(server)
        said = "" if role is None else ("Set. " if seconds is not None else "Cleared. ")
        await reply(interaction, said + limits_text(self.bot.studio.settings, server, limits))

    async def _set_train_role(
        self, interaction: discord.Interaction[Any], role: discord.Role, on: bool
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        roles = await self.bot.studio.forge.set_training_role(requester_of(interaction), str(role.id), on)
        listed = ", ".join(f"<@&{r}>" for r in roles) if roles else "everyone (no roles chosen)"
        await reply(interaction, f"{'Added' if on else 'Removed'}. May train models now: {listed}.")

    @app_commands.command(name="remove", description="Remove an Atelier result and its images (moderators)")
    @app_commands.describe(link="Link to the Atelier result or image message")
    async def remove_result(
        self, interaction: discord.Interaction[AtelierBot], link: app_commands.Range[str, 1, 200]
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel_id, message_id = parse_link(interaction, link)
        requester = replace(
            requester_of(interaction), moderator=await manages_messages(self.bot, interaction, channel_id)
        )
        erased = await self.bot.studio.removal.remove(requester, str(message_id))
        await delete_posts(self.bot, erased.posts)
        await reply(interaction, summary(erased))

    async def remix_into_thread(
        self, channel: Any, user: discord.abc.User, requester: Requester, image: ImageRecord, text: str
    ) -> discord.Thread:
        """Clone an image's recipe (as edited) into a new project thread of the remixer's."""
        parent = channel.parent if isinstance(channel, discord.Thread) else channel
        if not isinstance(parent, discord.TextChannel):
            raise StudioError("Remixes start in a server text channel.")
        plan = await self.bot.studio.refine.prepare_clone(requester, image, render.strip_mentions(text))
        thread, project = await new_project_thread(
            self.bot, parent, user, requester, f"Remix: {plan.recipe.prompt}"
        )
        generation = await self.bot.studio.generations.start(plan, project=project, deliver_to=str(thread.id))
        await post_status(self.bot, thread, generation)
        return thread

    async def share(self, generation: Generation, guild: discord.Guild, png: bytes) -> None:
        """Cross-post a public result to its own server's remix channels (once)."""
        channels = await self.bot.studio.community.share_channels(
            generation
        )  # none if private or of elsewhere
        if not channels or str(guild.id) != generation.server:
            return
        if any(p.kind == "share" for p in await self.bot.studio.store.posts_of(generation.id)):
            return
        prompt = render.quote(generation.recipe.prompt, 300)
        text = f"{REMIX} {render.credit(generation.owner_id)} made *{prompt}* — remix it!"
        picture = Picture(png, f"atelier-{generation.id[:8]}")  # fitted once, for every channel
        for channel_id in channels:
            channel = guild.get_channel(int(channel_id))
            if not isinstance(channel, discord.TextChannel):
                continue
            message = await send_images(
                self.bot, [picture], partial(self._post_share, channel, text, generation), guild=guild
            )
            await self.bot.studio.store.add_post(str(message.id), str(channel.id), generation.id, "share")

    async def _post_share(
        self, channel: discord.TextChannel, text: str, generation: Generation, files: list[FittedFile]
    ) -> discord.Message:
        return await channel.send(
            text, files=files, view=share_view(generation), allowed_mentions=render.NO_PINGS
        )

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if str(payload.emoji) != REMIX or payload.member is None or payload.member.bot:
            return
        try:
            post = await self.bot.studio.store.post(str(payload.message_id))
            if post is None:
                return
            requester = Requester(
                id=f"discord:{payload.user_id}",
                name=payload.member.display_name,
                server=str(payload.guild_id) if payload.guild_id else None,
            )
            image = await self.bot.studio.refine.remixable(
                requester, post.generation_id, post.image_index or 0
            )
            channel = self.bot.get_channel(payload.channel_id)
            await self.remix_into_thread(
                channel, payload.member, requester, image, self.bot.studio.refine.remix_text(image)
            )
        except StudioError as error:
            log.info("🔀 by %s not done: %s", payload.user_id, error)
        except Exception:
            log.exception("🔀 by %s on %s failed", payload.user_id, payload.message_id)
