"""Smoke test of the fake Discord against a real discord.py bot running in this process."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.fake_discord import FakeDiscord

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


class PanelView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="Go", custom_id="panel:go", style=discord.ButtonStyle.primary)
    async def go(self, interaction: discord.Interaction, button: discord.ui.Button[PanelView]) -> None:
        await interaction.response.edit_message(content="clicked", view=None)


class PickView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.select(
        custom_id="pick:size",
        options=[discord.SelectOption(label=s, value=s) for s in ("small", "large")],
    )
    async def size(self, interaction: discord.Interaction, select: discord.ui.Select[PickView]) -> None:
        await interaction.response.edit_message(content=f"size={select.values[0]}", view=None)


class AskModal(discord.ui.Modal, title="Ask"):
    answer: discord.ui.TextInput[AskModal] = discord.ui.TextInput(label="Answer", custom_id="ask:answer")

    def __init__(self) -> None:
        super().__init__(custom_id="ask:modal")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            f"got {self.answer.value}", ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


class SmokeBot(commands.Bot):
    def __init__(self, guild_id: int, *more_guild_ids: int) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        intents.members = True
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.guild_id = guild_id
        self.guild_ids = [guild_id, *more_guild_ids]
        self.errors: list[Exception] = []
        self.reactions: list[discord.RawReactionActionEvent] = []
        self.pending: list[discord.Interaction] = []
        self._add_commands()

    def _add_commands(self) -> None:
        tree = self.tree
        none = discord.AllowedMentions.none()

        @tree.command(description="Render a picture")
        async def render(interaction: discord.Interaction, prompt: str) -> None:
            await interaction.response.defer(thinking=True)
            await asyncio.sleep(0.05)
            await interaction.followup.send(
                content=f"done: {prompt}",
                file=discord.File(io.BytesIO(PNG), "out.png"),
                allowed_mentions=none,
            )

        @tree.command(description="Answer too late")
        async def slow(interaction: discord.Interaction) -> None:
            await asyncio.sleep(3.2)
            try:
                await interaction.response.send_message("late")
            except discord.HTTPException as exc:
                self.errors.append(exc)

        @tree.command(description="A button")
        async def panel(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("panel", view=PanelView())

        @tree.command(description="A select menu")
        async def pick(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pick a size", view=PickView())

        @tree.command(description="A modal")
        async def ask(interaction: discord.Interaction) -> None:
            await interaction.response.send_modal(AskModal())

        @tree.command(description="Echo text")
        async def echo(interaction: discord.Interaction, text: str) -> None:
            await interaction.response.send_message(text, allowed_mentions=none)

        @tree.command(description="Defer and finish later")
        async def later(interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            self.pending.append(interaction)

        @tree.command(description="For server managers")
        @app_commands.default_permissions(manage_guild=True)
        async def manage(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("managed", ephemeral=True)

        @tree.command(description="Pick a colour")
        async def color(interaction: discord.Interaction, name: str) -> None:
            await interaction.response.send_message(name, allowed_mentions=none)

        @color.autocomplete("name")
        async def color_names(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            names = ["red", "green", "blue", "rebeccapurple"]
            return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

    async def setup_hook(self) -> None:
        for guild_id in self.guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.reactions.append(payload)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield fake
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway
        await fake.stop()


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[SmokeBot]:
    bot = SmokeBot(fake.guild_id)
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_connected(timeout=10)
        await fake.wait_for(bot.is_ready, timeout=10, message="bot never became ready")
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)


def channel(bot: SmokeBot, fake: FakeDiscord) -> discord.TextChannel:
    ch = bot.get_channel(fake.channel_id)
    assert isinstance(ch, discord.TextChannel)
    return ch


async def test_login_sync_and_deferred_followup_with_file(fake: FakeDiscord, bot: SmokeBot) -> None:
    assert bot.user is not None and bot.user.id == fake.bot_user_id
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.chunked
    assert {m.name for m in guild.members} == {"Atelier", "alice", "bob", "mod"}
    assert {c["name"] for c in fake.commands} >= {"render", "slow", "panel", "ask", "echo", "color"}
    assert fake.command_syncs[-1][0] == f"guild:{fake.guild_id}"

    record = await fake.slash("render", {"prompt": "a cat"})
    response = await record.wait_response()
    assert response.type == 5 and response.latency < 1.0
    (message,) = await record.wait_followups(1)
    assert message.content == "done: a cat"
    assert [(a.filename, a.bytes) for a in message.attachments] == [("out.png", PNG)]
    assert await record.original() is message  # the first follow-up completes the deferred message
    assert not message.loading and not message.ephemeral
    assert not fake.pings_anyone(message)
    assert message in fake.channel_messages(fake.channel_id)
    fake.assert_clean()


async def test_reply_after_three_seconds_is_refused(fake: FakeDiscord, bot: SmokeBot) -> None:
    record = await fake.slash("slow")
    error = await fake.wait_for(lambda: bot.errors[0] if bot.errors else None, timeout=6)
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert [(r.status, r.code) for r in record.rejected] == [(404, 10062)]
    assert not record.acknowledged
    fake.expect_violation("10062")
    fake.expect_violation("not acknowledged within 3 s")
    fake.assert_clean()


async def test_button_click_updates_the_message(fake: FakeDiscord, bot: SmokeBot) -> None:
    record = await fake.slash("panel")
    assert (await record.wait_response()).type == 4
    panel_id = record.original_message_id
    assert panel_id is not None
    assert fake.messages[panel_id].components[0]["components"][0]["custom_id"] == "panel:go"

    click = await fake.click(panel_id, "panel:go", user="bob")
    assert (await click.wait_response()).type == 7
    panel = fake.messages[panel_id]
    assert panel.content == "clicked" and panel.components == []
    assert await click.original() is panel
    fake.assert_clean()


async def test_select_modal_and_autocomplete(fake: FakeDiscord, bot: SmokeBot) -> None:
    record = await fake.slash("pick")
    await record.wait_response()
    assert record.original_message_id is not None
    chosen = await fake.select(record.original_message_id, "pick:size", ["large"])
    assert (await chosen.wait_response()).type == 7
    assert fake.messages[record.original_message_id].content == "size=large"

    opened = await fake.slash("ask")
    modal = await opened.wait_response()
    assert modal.type == 9 and modal.data["custom_id"] == "ask:modal"
    submitted = await fake.submit_modal("ask:modal", {"ask:answer": "blue"})
    assert (await submitted.wait_response()).type == 4
    answer = await submitted.original()
    assert answer is not None and answer.content == "got blue" and answer.ephemeral
    assert answer not in fake.channel_messages()

    choices = await fake.autocomplete("color", {"name": "re"}, focused="name")
    assert choices == [{"name": n, "value": n} for n in ("red", "rebeccapurple")]
    fake.assert_clean()


async def test_reactions_reach_the_bot_and_back(fake: FakeDiscord, bot: SmokeBot) -> None:
    message = await fake.send_user_message("react to me", user="alice")
    await fake.react(message.id, "👍", user="bob")
    payload = await fake.wait_for(lambda: bot.reactions[-1] if bot.reactions else None)
    assert payload.user_id == fake.users["bob"] and payload.message_id == message.id
    assert payload.emoji.name == "👍" and payload.member is not None

    await channel(bot, fake).get_partial_message(message.id).add_reaction("✅")
    assert fake.reactions_by_bot[message.id] == ["✅"]
    fake.assert_clean()


async def test_injected_429_is_retried(fake: FakeDiscord, bot: SmokeBot) -> None:
    rule = fake.inject_rate_limit("POST", r"/channels/\d+/messages", count=1, retry_after=0.2)
    sent = await channel(bot, fake).send("hello")
    assert rule.consumed and len(rule.hits) == 1
    path = f"/channels/{fake.channel_id}/messages"
    assert [r.status for r in fake.requests if r.method == "POST" and r.path == path] == [429, 200]
    assert fake.messages[sent.id].content == "hello"
    assert fake.pings_anyone(sent.id)  # no allowed_mentions: Discord's default pings everything
    fake.assert_clean()


async def test_limits_are_enforced(fake: FakeDiscord, bot: SmokeBot) -> None:
    ch = channel(bot, fake)
    files = [discord.File(io.BytesIO(b"x"), f"{i}.txt") for i in range(11)]
    with pytest.raises(discord.HTTPException) as too_many:
        await ch.send("eleven", files=files)
    assert too_many.value.status == 400 and too_many.value.code == 50035
    fake.expect_violation("Must be 10 or fewer")

    big = discord.File(io.BytesIO(b"\0" * (fake.attachment_size_limit + 1)), "big.bin")
    with pytest.raises(discord.HTTPException) as too_big:
        await ch.send(file=big)
    assert too_big.value.status == 413 and too_big.value.code == 40005
    fake.expect_violation("40005")

    with pytest.raises(discord.HTTPException) as too_long:
        await ch.send("x" * 2001)
    assert too_long.value.status == 400 and too_long.value.code == 50035
    fake.expect_violation("2000 or fewer")
    assert fake.channel_messages() == []
    fake.assert_clean()


async def test_thread_from_message(fake: FakeDiscord, bot: SmokeBot) -> None:
    starter = await channel(bot, fake).send("thread me")
    thread = await starter.create_thread(name="render", auto_archive_duration=60)
    record = fake.threads[thread.id]
    assert thread.id == starter.id == record.starter_message_id
    assert (record.name, record.parent_id, record.auto_archive_duration) == ("render", fake.channel_id, 60)
    await fake.wait_for(lambda: bot.get_channel(thread.id), message="THREAD_CREATE never reached the bot")

    other = await channel(bot, fake).send("another")
    with pytest.raises(discord.HTTPException) as bad_name:
        await other.create_thread(name="n" * 101)
    assert bad_name.value.code == 50035
    fake.expect_violation("name")
    with pytest.raises(discord.HTTPException):
        await other.create_thread(name="ok", auto_archive_duration=30)  # type: ignore[arg-type]
    fake.expect_violation("auto_archive_duration")
    fake.assert_clean()


async def test_interaction_token_expires_after_15_minutes(fake: FakeDiscord, bot: SmokeBot) -> None:
    record = await fake.slash("later")
    assert (await record.wait_response()).type == 5
    interaction = await fake.wait_for(lambda: bot.pending[0] if bot.pending else None)
    fake.advance_interaction_clock(16 * 60)
    with pytest.raises(discord.HTTPException) as expired:
        await interaction.edit_original_response(content="finally")
    assert expired.value.status == 401 and expired.value.code == 50027
    fake.expect_violation("expired")
    fake.assert_clean()


async def test_gateway_resume_after_drop(fake: FakeDiscord, bot: SmokeBot) -> None:
    await fake.disconnect_clients(code=4000)
    await fake.wait_for(lambda: fake.gateway.resume_count == 1, message="client never resumed")
    record = await fake.slash("echo", {"text": "@everyone hi"})
    await record.wait_response()
    echoed = await record.original()
    assert echoed is not None and echoed.content == "@everyone hi" and not fake.pings_anyone(echoed)
    fake.assert_clean()


async def test_wrong_token_is_refused(fake: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.none())
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
    finally:
        await client.close()
    fake.expect_violation("401")
    fake.assert_clean()


async def test_missing_permissions_and_pings(fake: FakeDiscord, bot: SmokeBot) -> None:
    ch = channel(bot, fake)
    loud = await ch.send(f"hey <@{fake.users['alice']}> @everyone")
    assert fake.pinged(loud.id) == ["@everyone", f"user:{fake.users['alice']}"]
    quiet = await ch.send(f"hey <@{fake.users['alice']}>", allowed_mentions=discord.AllowedMentions.none())
    assert fake.pinged(quiet.id) == [] and not fake.pings_anyone(quiet.id)

    await fake.set_bot_permissions(0x400)  # view channel only
    guild = ch.guild
    await fake.wait_for(
        lambda: not ch.permissions_for(guild.me).send_messages, message="CHANNEL_UPDATE not seen"
    )
    with pytest.raises(discord.Forbidden) as refused:
        await ch.send("nope")
    assert refused.value.code == 50013
    fake.expect_violation("Missing Permissions")
    fake.assert_clean()


async def test_bot_restart_reconnects(fake: FakeDiscord, bot: SmokeBot) -> None:
    await bot.close()
    await fake.wait_disconnected()
    second = SmokeBot(fake.guild_id)
    task = asyncio.create_task(second.start(fake.token))
    try:
        await fake.wait_connected()
        await fake.wait_for(second.is_ready)
        assert fake.gateway.identify_count == 2
        record = await fake.slash("echo", {"text": "again"})
        assert (await record.wait_response()).type == 4
    finally:
        await second.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    fake.assert_clean()


async def test_several_guilds_keep_their_members_and_channels_apart(fake: FakeDiscord) -> None:
    second = await fake.add_guild("Second Guild", members=["alice", "carol"])
    elsewhere = await fake.add_guild("No Bot Here", members=["bob"], bot=False)
    bot = SmokeBot(fake.guild_id, second.id)
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_connected()
        await fake.wait_for(bot.is_ready)
        assert {g.id for g in bot.guilds} == {fake.guild_id, second.id}
        theirs = bot.get_guild(second.id)
        assert theirs is not None and {m.name for m in theirs.members} == {"Atelier", "alice", "carol"}
        assert f"guild:{second.id}" in {where for where, _ in fake.command_syncs}

        record = await fake.slash("echo", {"text": "hello B"}, user="carol", channel_id=second.channel_id)
        await record.wait_response()
        assert record.payload["guild_id"] == str(second.id)
        echoed = await record.original()
        assert echoed is not None and echoed in fake.channel_messages(second.channel_id)
        assert echoed not in fake.channel_messages(fake.channel_id)
        link = fake.jump_link(echoed)
        assert fake.can_open("alice", link) and fake.can_open("carol", link)
        assert not fake.can_open("bob", link)  # bob is not in the second guild
        assert not fake.can_open("alice", link.replace(str(second.id), str(fake.guild_id)))
        with pytest.raises(AssertionError, match="not a member"):
            await fake.slash("echo", {"text": "hi"}, user="carol", channel_id=fake.channel_id)
        with pytest.raises(AssertionError, match="not a member"):
            await fake.slash("echo", {"text": "hi"}, user="bob", channel_id=second.channel_id)

        # The bot can read nothing of a guild it is not in, like on Discord.
        hidden = await fake.send_user_message("secret", user="bob", channel_id=elsewhere.channel_id)
        with pytest.raises(discord.Forbidden) as channel_refused:
            await bot.fetch_channel(elsewhere.channel_id)
        assert channel_refused.value.code == 50001
        fake.expect_violation("Missing Access")
        partial = bot.get_partial_messageable(elsewhere.channel_id)
        with pytest.raises(discord.Forbidden):
            await partial.fetch_message(hidden.id)
        fake.expect_violation("Missing Access")
        with pytest.raises(discord.Forbidden):
            await bot.fetch_guild(elsewhere.id)
        fake.expect_violation("Missing Access")
        with pytest.raises(discord.NotFound) as unknown:
            await bot.fetch_channel(1234)
        assert unknown.value.code == 10003
        fake.expect_violation("Unknown Channel")
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    fake.assert_clean()


async def test_private_threads_show_only_to_their_members_and_moderators(
    fake: FakeDiscord, bot: SmokeBot
) -> None:
    ch = channel(bot, fake)
    thread = await ch.create_thread(name="secret", type=discord.ChannelType.private_thread, invitable=False)
    record = fake.threads[thread.id]
    assert record.private and not record.invitable and fake.thread_members(thread.id) == [fake.bot_user_id]
    alice, bob = fake.users["alice"], fake.users["bob"]
    quiet = await thread.send(f"for <@{alice}>", allowed_mentions=discord.AllowedMentions.none())
    assert not fake.can_see("alice", thread.id)  # a mention that pings no one adds no one
    assert fake.can_see("mod", thread.id)  # Manage Threads sees every private thread
    with pytest.raises(AssertionError, match="cannot see"):
        await fake.slash("echo", {"text": "hi"}, user="alice", channel_id=thread.id)
    with pytest.raises(AssertionError, match="cannot see"):
        await fake.send_user_message("let me in", user="alice", channel_id=thread.id)
    assert not fake.can_open("alice", fake.jump_link(quiet.id))

    await thread.add_user(discord.Object(alice))
    assert fake.thread_members(thread.id) == [fake.bot_user_id, alice]
    assert fake.can_open("alice", fake.jump_link(quiet.id))
    record_echo = await fake.slash("echo", {"text": "inside"}, user="alice", channel_id=thread.id)
    await record_echo.wait_response()
    await thread.send(f"hey <@{bob}>")  # a mention that pings adds the person, as on Discord
    assert fake.can_see("bob", thread.id)
    members = await thread.fetch_members()  # the smoke bot has the members intent
    assert {m.id for m in members} == {fake.bot_user_id, alice, bob}
    fake.assert_clean()


async def test_without_message_content_rest_reads_are_blank_too(fake: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.default())  # no privileged intent
    task = asyncio.create_task(client.start(fake.token))
    try:
        await fake.wait_connected()
        await fake.wait_for(client.is_ready)
        picture = ("a picture", (PNG, "art.png", "image/png"))
        theirs = await fake.send_user_message(picture[0], user="alice", attachments=[picture[1]])
        calling = await fake.send_user_message(f"<@{fake.bot_user_id}> look", user="bob")
        ch = client.get_channel(fake.channel_id)
        assert isinstance(ch, discord.TextChannel)
        ours = await ch.send("mine", file=discord.File(io.BytesIO(PNG), "ours.png"))

        read = await ch.fetch_message(theirs.id)
        assert (read.content, read.attachments, read.embeds, read.components) == ("", [], [], [])
        history = {m.id: m async for m in ch.history(limit=10)}
        assert history[theirs.id].content == "" and history[theirs.id].attachments == []
        assert history[calling.id].content.endswith("look")  # a message that mentions the app
        own = await ch.fetch_message(ours.id)  # the app's own message
        assert own.content == "mine" and [a.filename for a in own.attachments] == ["ours.png"]
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
    fake.assert_clean()


async def test_default_member_permissions_hide_a_command(fake: FakeDiscord, bot: SmokeBot) -> None:
    (manage,) = [c for c in fake.commands if c["name"] == "manage"]
    assert manage["default_member_permissions"] == str(1 << 5)
    with pytest.raises(AssertionError, match="hidden from mod"):
        await fake.slash("manage", user="mod")
    fake.roles[fake.moderator_role_id].permissions |= 1 << 5  # Manage Server
    assert (await (await fake.slash("manage", user="mod")).wait_response()).type == 4
    with pytest.raises(AssertionError, match="hidden from alice"):
        await fake.slash("manage", user="alice")
    fake.permit_command("manage", "alice")  # an admin's override for one person
    assert (await (await fake.slash("manage", user="alice")).wait_response()).type == 4
    fake.permit_command("manage", fake.moderator_role_id, allowed=False)  # and against a role
    with pytest.raises(AssertionError, match="by an override"):
        await fake.slash("manage", user="mod")
    fake.forget_command_permits("manage")
    assert (await (await fake.slash("manage", user="mod")).wait_response()).type == 4
    fake.assert_clean()
