"""Commands that survive a bot crash: recorded before "thinking…", finished after a restart.

Discord gives a command 3 s for its first response and then 15 minutes to answer through the
interaction's webhook. A bot killed between its "thinking…" and its answer used to leave the
person waiting forever. Now a command that starts a generation is recorded (with its options
and its generation id, chosen up front) before it is acknowledged, and marked done once it has
answered. On start the bot finishes every command still pending and younger than 15 minutes:
a generation already submitted for it is not submitted again (the delivery tracker posts and
follows its status message); the deferred response is then edited through the webhook.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.interactions import APOLOGY, reply, token_is_dead
from bot.projects import requester_of
from bot.render import NO_PINGS
from studio.acknowledgements import requester_of_row, requester_row
from studio.entities import Requester
from studio.errors import StudioError
from studio.quotas import DailyQuotaReached
from studio.store.interactions import Acknowledged
from studio.store.repository import new_id

if TYPE_CHECKING:
    from bot.app import AtelierBot

log = logging.getLogger(__name__)
Handler = Callable[["Command"], Awaitable[None]]
ORIGINAL = cast(int, "@original")  # the webhook route takes "@original" for the deferred response


class Command:
    """One acknowledged command, live (its Interaction at hand) or resumed from its record."""

    def __init__(
        self, bot: AtelierBot, ack: Acknowledged, interaction: discord.Interaction[Any] | None = None
    ) -> None:
        self.bot = bot
        self.ack = ack
        self.interaction = interaction

    @property
    def options(self) -> dict[str, Any]:
        return self.ack.options

    @property
    def requester(self) -> Requester:
        return requester_of_row(self.ack.requester)

    @property
    def generation_id(self) -> str:
        return self.ack.generation_id

    @property
    def resumed(self) -> bool:
        return self.interaction is None

    @property
    def guild_id(self) -> int | None:
        return int(self.ack.guild_id) if self.ack.guild_id else None

    def describe(self) -> str:
        return f"/{self.ack.command} {self.ack.id} of user {self.ack.user_id}"

    async def channel(self) -> Any:
        """Where the command was used (a text channel or a thread)."""
        if self.interaction is not None:
            return self.interaction.channel
        return await self.bot.channel_by_id(int(self.ack.channel_id))

    async def user(self) -> discord.abc.User:
        if self.interaction is not None:
            return self.interaction.user
        return self.bot.get_user(int(self.ack.user_id)) or await self.bot.fetch_user(int(self.ack.user_id))

    async def known_thread(self) -> Any | None:
        """The project thread this command already worked in before a restart, if any."""
        if self.ack.thread_id is None:
            return None
        return await self.bot.channel_by_id(int(self.ack.thread_id))

    async def working_in(self, thread: discord.abc.Snowflake) -> None:
        """Remember the thread before the generation is submitted: a resume reuses it."""
        if self.ack.thread_id != str(thread.id):
            self.ack = await self.bot.studio.acknowledged.opened_thread(self.ack, str(thread.id))

    def remember_limit(self) -> None:
        if self.ack.guild_id is not None and self.ack.upload_limit:
            self.bot.remember_guild_limit(int(self.ack.guild_id), self.ack.upload_limit)

    async def answer(self, text: str) -> None:
        """The command's answer, in place of "thinking…". A dead token is logged, not raised:
        the work goes on and its result still arrives where it is delivered."""
        try:
            if self.interaction is not None:
                await reply(self.interaction, text)
            else:
                webhook = discord.Webhook.partial(
                    int(self.ack.application_id), self.ack.token, client=self.bot
                )
                await webhook.edit_message(ORIGINAL, content=text[:2000], allowed_mentions=NO_PINGS)
        except discord.HTTPException as error:
            if not token_is_dead(error):
                raise
            log.warning(
                "could not answer %s: its interaction token is no longer valid (%s %s)",
                self.describe(),
                error.status,
                error.text or error.code,
            )

    async def fail(self, error: Exception) -> None:
        """StudioErrors are the person's to fix: say so. Anything else is ours: log, apologise."""
        if isinstance(error, StudioError):
            await self.answer(error.discord_text if isinstance(error, DailyQuotaReached) else str(error))
            return
        if isinstance(error, discord.HTTPException) and token_is_dead(error):
            log.warning("%s: its interaction token is no longer valid (%s)", self.describe(), error.status)
            return
        log.error("unexpected error in %s", self.describe(), exc_info=error)
        await self.answer(APOLOGY)


class Pending:
    """Records acknowledged commands, runs them, and finishes the ones a restart interrupted."""

    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self.handlers: dict[str, Handler] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, command: str, handler: Handler) -> None:
        """``handler`` does the command's work (and answers); a resumed command runs it again."""
        self.handlers[command] = handler

    async def acknowledge(
        self,
        interaction: discord.Interaction[Any],
        command: str,
        options: dict[str, Any],
        respond: Callable[[], Awaitable[Any]] | None = None,
    ) -> Command | None:
        """Record the command, then defer ("thinking…"), or ``respond`` instead (a button's own
        first response, e.g. updating its message). None when Discord refused it."""
        user = interaction.user
        ack = Acknowledged(
            id=str(interaction.id),
            application_id=str(interaction.application_id),
            token=interaction.token,
            command=command,
            options=options,
            user_id=str(user.id),
            requester=requester_row(requester_of(interaction)),
            guild_id=str(interaction.guild_id) if interaction.guild_id else None,
            channel_id=str(interaction.channel_id),
            upload_limit=interaction.filesize_limit,
            generation_id=new_id(),
            thread_id=None,
            created_at=time.time(),
        )
        ack = await self.bot.studio.acknowledged.record(ack)  # before Discord hears anything
        if ack.done_at is not None:
            return None  # a redelivered interaction that was already answered
        try:
            if respond is not None:
                await respond()
            else:
                await interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException as error:
            # Too late (the 3 s window) or unknown: Discord told the person it did not respond, and
            # they may try again; doing the work anyway would make a second, unexpected result.
            log.warning(
                "could not acknowledge /%s of user %s (%s %s); not started",
                command,
                user.id,
                error.status,
                error.text or error.code,
            )
            await self.bot.studio.store.interactions.finish(ack.id, "unacknowledged")
            return None
        return Command(self.bot, ack, interaction)

    async def run(self, command: Command) -> None:
        """Do the work once: a generation already submitted for it is only answered for."""
        studio = self.bot.studio
        try:
            submitted = await studio.acknowledged.submitted(command.ack)
            if submitted is not None:
                where = f"<#{command.ack.thread_id}>" if command.ack.thread_id else "its project thread"
                await command.answer(f"On it — follow along in {where}.")
            else:
                await self.handlers[command.ack.command](command)
            outcome = "answered"
        except asyncio.CancelledError:
            raise  # stopping: left pending, finished at the next start
        except Exception as error:
            try:
                await command.fail(error)
            except discord.HTTPException:
                log.warning("could not tell %s about an error", command.describe(), exc_info=True)
            outcome = "failed"
        await studio.store.interactions.finish(command.ack.id, outcome)

    async def resume(self) -> int:
        """Finish, in the background, every command a stop interrupted; drop the expired ones."""
        live, expired = await self.bot.studio.acknowledged.pending()
        for ack in expired:
            log.warning(
                "dropped /%s %s of user %s: interrupted %.0f s ago, its token has expired",
                ack.command,
                ack.id,
                ack.user_id,
                time.time() - ack.created_at,
            )
            await self.bot.studio.store.interactions.finish(ack.id, "expired")
        for ack in live:
            if ack.command not in self.handlers:
                log.warning("dropped /%s %s: no handler for it any more", ack.command, ack.id)
                await self.bot.studio.store.interactions.finish(ack.id, "unknown")
                continue
            log.info("resuming /%s %s of user %s", ack.command, ack.id, ack.user_id)
            task = asyncio.create_task(self._resume(ack))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(live)

    async def _resume(self, ack: Acknowledged) -> None:
        await self.bot.wait_until_ready()  # channels and threads are known once the guild arrived
        await self.run(Command(self.bot, ack))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
