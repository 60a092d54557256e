"""/evolve: decode, call studio.evolve, post each round's grid and poll, and close polls.

A round's poll closes by whichever comes first: Discord ends it (its results arrive finalized in
a MESSAGE_UPDATE, and a poll-result message follows; both need the GUILD_MESSAGES intent), our
time limit (``minutes``) ends it, or its owner presses "End voting now". Every path reads the
final counts and asks the studio to close the round, which a compare-and-set does once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import render
from bot.exts.evolve._views import round_view
from bot.interactions import reply
from bot.pending import Command
from bot.projects import post_status, project_in, requester_of
from studio.entities import Project, Requester
from studio.errors import NotFound, NotYours, StudioError
from studio.evolve import DEFAULT_MINUTES, DEFAULT_ROUNDS, MAX_MINUTES, MAX_ROUNDS, Closed, Evolve, poll_hours
from studio.store.evolutions import Evolution

if TYPE_CHECKING:
    from bot.app import AtelierBot

log = logging.getLogger(__name__)
POLL_EXPIRED = 520001  # Discord: the poll already ended


def vote_counts(poll: dict[str, Any]) -> list[int]:
    """Votes by answer (answers are "Image 1".."Image N", ids 1..N in order) from a poll payload."""
    counts = {int(c["id"]): int(c["count"]) for c in (poll.get("results") or {}).get("answer_counts", [])}
    return [counts.get(int(a["answer_id"]), 0) for a in poll.get("answers", [])]


def _poll_of(message: Any) -> dict[str, Any] | None:
    poll = message.get("poll")
    return poll if isinstance(poll, dict) else None


def finalized(poll: dict[str, Any] | None) -> bool:
    return bool(poll and (poll.get("results") or {}).get("is_finalized"))


class EvolveCog(commands.Cog, name="Evolve"):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        studio = bot.studio
        self.evolve = Evolve(studio.store, studio.generations, studio.refine)
        self._locks: dict[str, asyncio.Lock] = {}
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def cog_load(self) -> None:
        self.bot.pending.handle("evolve", self._evolve)
        self._spawn(self._resume())

    async def cog_unload(self) -> None:
        for task in [*self._timers.values(), *self._tasks]:
            task.cancel()

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lock(self, evolution_id: str) -> asyncio.Lock:
        return self._locks.setdefault(evolution_id, asyncio.Lock())

    # /evolve

    @app_commands.command(
        name="evolve", description="Evolve an image by vote: each round's grid is a poll, the winner goes on"
    )
    @app_commands.describe(
        prompt="What to see (inline flags work: --ar 3:2 --seed 42 ...)",
        rounds=f"How many rounds of voting (1-{MAX_ROUNDS}, default {DEFAULT_ROUNDS})",
        minutes=f"How long each round's vote lasts, in minutes (1-{MAX_MINUTES}, default {DEFAULT_MINUTES})",
    )
    async def evolve_command(
        self,
        interaction: discord.Interaction[AtelierBot],
        prompt: app_commands.Range[str, 1, 6000],
        rounds: int = DEFAULT_ROUNDS,
        minutes: int = DEFAULT_MINUTES,
    ) -> None:
        said = {"prompt": prompt, "rounds": rounds, "minutes": minutes}
        command = await self.bot.pending.acknowledge(interaction, "evolve", said)
        if command is not None:
            await self.bot.pending.run(command)

    async def _evolve(self, command: Command) -> None:
        """/evolve's work, live or resumed after a restart (bot/pending.py)."""
        said = command.options
        requester = command.requester
        rounds, minutes = int(said["rounds"]), int(said["minutes"])
        plan = await self.evolve.prepare(requester, render.strip_mentions(said["prompt"]), rounds, minutes)
        channel = await command.channel()
        target, project = await self._target(command, channel, requester, plan.recipe.prompt)
        await command.working_in(target)
        _, generation = await self.evolve.begin(
            plan, project, str(target.id), rounds, minutes, command.generation_id
        )
        command.remember_limit()
        await target.send(
            f"🧬 **Evolve** · {rounds} round(s) of voting, {minutes} min each. Each round's grid "
            "comes with a poll: the image with the most votes is varied into the next round "
            "(a tie goes to the lower image number).",
            allowed_mentions=render.NO_PINGS,
        )
        await post_status(self.bot, target, generation)
        await command.answer(f"Evolving over {rounds} round(s) — vote in {target.mention}.")

    async def _target(
        self, command: Command, channel: Any, requester: Requester, title: str
    ) -> tuple[discord.Thread, Project]:
        thread = await command.known_thread()
        if thread is not None and thread.id != channel.id:
            project = await self.bot.studio.store.project_by_thread(str(thread.id))
            if project is None:
                project = await self.bot.studio.projects.open(requester, thread.name, str(thread.id))
            return thread, project
        return await project_in(self.bot, channel, await command.user(), requester, title, False, "/evolve")

    # A round's grid is delivered: its poll

    @commands.Cog.listener()
    async def on_generation_delivered(self, generation_id: str) -> None:
        try:
            evolution = await self.evolve.rows.by_generation(generation_id)
            if evolution is None:
                return
            async with self._lock(evolution.id):
                claimed = await self.evolve.grid_ready(generation_id)
                if claimed is None:
                    await self._say_if_failed(evolution.id)
                    return
                await self._post_poll(claimed)
        except Exception:
            log.exception("evolve: could not post the poll of generation %s", generation_id)

    async def _say_if_failed(self, evolution_id: str) -> None:
        evolution = await self.evolve.rows.get(evolution_id)
        if evolution.state == "failed":
            channel = await self.bot.channel_by_id(int(evolution.thread_id))
            await channel.send(
                f"⚠️ Evolution stopped: round {evolution.round}'s grid did not finish.",
                allowed_mentions=render.NO_PINGS,
            )

    async def _post_poll(self, evolution: Evolution) -> None:
        channel = await self.bot.channel_by_id(int(evolution.thread_id))
        generation = await self.bot.studio.store.get_generation(evolution.generation_id)
        closes = int(time.time() + evolution.minutes * 60)
        await channel.send(
            f"🗳️ **Round {evolution.round} of {evolution.rounds}** — vote for the image to evolve "
            f"in the poll below. Voting closes <t:{closes}:R>.",
            view=round_view(evolution.id),
            allowed_mentions=render.NO_PINGS,
        )
        poll = discord.Poll(
            question=f"Round {evolution.round} of {evolution.rounds}: which image should evolve?",
            duration=datetime.timedelta(hours=poll_hours(evolution.minutes)),
        )
        for n in range(generation.recipe.batch):
            poll.add_answer(text=f"Image {n + 1}")
        message = await channel.send(poll=poll, allowed_mentions=render.NO_PINGS)
        posted = await self.evolve.poll_posted(evolution, str(message.id))
        self._schedule(posted)

    # Closing a round's poll

    def _schedule(self, evolution: Evolution) -> None:
        """Our time limit: the poll is ended at ``closes_at`` if nothing closed it before."""
        if evolution.closes_at is None:
            return
        old = self._timers.pop(evolution.id, None)
        if old is not None:
            old.cancel()
        self._timers[evolution.id] = asyncio.create_task(self._close_at(evolution))

    async def _close_at(self, evolution: Evolution) -> None:
        assert evolution.closes_at is not None
        await asyncio.sleep(max(0.0, evolution.closes_at - time.time()))
        self._timers.pop(evolution.id, None)
        try:
            await self._close(evolution.id, evolution.round, end=True)
        except Exception:
            log.exception("evolve: could not close round %d of %s", evolution.round, evolution.id)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Discord ended a poll: its results arrive finalized."""
        data: dict[str, Any] = dict(payload.data)
        if finalized(data.get("poll")):
            await self._poll_ended(str(payload.message_id), data["poll"])

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Discord's poll-result message (it follows the final results; either one closes the round)."""
        reference = message.reference
        if message.type is discord.MessageType.poll_result and reference and reference.message_id:
            await self._poll_ended(str(reference.message_id), None)

    async def _poll_ended(self, poll_message_id: str, poll: dict[str, Any] | None) -> None:
        try:
            evolution = await self.evolve.rows.by_poll(poll_message_id)
            if evolution is not None and evolution.state == "voting":
                await self._close(evolution.id, evolution.round, end=False, poll=poll)
        except Exception:
            log.exception("evolve: could not close the round of poll %s", poll_message_id)

    async def on_end_pressed(self, interaction: discord.Interaction[Any], evolution_id: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            evolution = await self.evolve.rows.get(evolution_id)
        except NotFound:
            await reply(interaction, "That evolution is over.")
            return
        if evolution.owner_id != requester_of(interaction).id:
            raise NotYours("Only the person who started this evolution can end its vote.")
        if evolution.state != "voting":
            await reply(interaction, "This round's vote has already closed.")
            return
        await self._close(evolution.id, evolution.round, end=True)
        await reply(interaction, f"Voting for round {evolution.round} closed.")

    async def _close(
        self, evolution_id: str, round_no: int, *, end: bool, poll: dict[str, Any] | None = None
    ) -> None:
        """Read the final counts (ending the poll first when ``end``) and close the round, once."""
        async with self._lock(evolution_id):
            evolution = await self.evolve.rows.get(evolution_id)
            if (
                evolution.state != "voting"
                or evolution.round != round_no
                or evolution.poll_message_id is None
            ):
                return
            channel_id, message_id = int(evolution.thread_id), int(evolution.poll_message_id)
            http = self.bot.http
            if not finalized(poll):
                poll = None
                if end:
                    try:
                        poll = _poll_of(await http.end_poll(channel_id, message_id))
                    except discord.HTTPException as error:
                        if error.code != POLL_EXPIRED:
                            raise
                if not finalized(poll):
                    poll = _poll_of(await http.get_message(channel_id, message_id))
            if not finalized(poll):
                return  # not over yet (a poll-result message raced its update): a later event closes it
            assert poll is not None
            try:
                closed = await self.evolve.close(evolution, vote_counts(poll))
            except StudioError as error:  # the next round was refused (a quota, the queue away)
                await self._stop(evolution.id, f"⚠️ Evolution stopped after round {round_no}: {error}")
                return
            if closed is None:
                return
            timer = self._timers.pop(evolution_id, None)
            if timer is not None and timer is not asyncio.current_task():
                timer.cancel()
            await self._announce(closed)

    async def _stop(self, evolution_id: str, text: str) -> None:
        current = await self.evolve.rows.get(evolution_id)
        if await self.evolve.rows.fail(current.id, current.round):
            channel = await self.bot.channel_by_id(int(current.thread_id))
            await channel.send(text, allowed_mentions=render.NO_PINGS)

    async def _announce(self, closed: Closed) -> None:
        evolution = closed.evolution
        channel = await self.bot.channel_by_id(int(evolution.thread_id))
        tally = " · ".join(f"{n + 1}: {v}" for n, v in enumerate(closed.votes))
        won = closed.votes[closed.winner]
        if not any(closed.votes):
            why = "no votes, so image 1 carries on"
        else:
            why = f"{won} vote(s)" + (
                " (a tie: the lower image number wins)" if closed.votes.count(won) > 1 else ""
            )
        text = f"🏆 Round {closed.round}: **image {closed.winner + 1}** wins with {why}. Votes — {tally}."
        if closed.next_generation is not None:
            await channel.send(
                text + f"\nRound {closed.round + 1}: varying image {closed.winner + 1}…",
                allowed_mentions=render.NO_PINGS,
            )
            await post_status(self.bot, channel, closed.next_generation)
            return
        await channel.send(text, allowed_mentions=render.NO_PINGS)
        await channel.send(await self._lineage(evolution), allowed_mentions=render.NO_PINGS)

    async def _lineage(self, evolution: Evolution) -> str:
        guild = self.bot.get_channel(int(evolution.thread_id))
        guild_id = getattr(getattr(guild, "guild", None), "id", None) or evolution.server
        lines = [
            f"🧬 **Evolution complete** · *{render.quote(evolution.prompt, 200)}* — the lineage of winners:"
        ]
        for winner in await self.evolve.winners(evolution.id):
            post = next((p for p in winner.posts if p.kind == "status"), None)
            where = (
                f" — https://discord.com/channels/{guild_id}/{post.channel_id}/{post.message_id}"
                if post is not None and guild_id
                else ""
            )
            arrow = "🌱" if winner.round == 1 else "↳"
            lines.append(
                f"{arrow} round {winner.round}: image {winner.index + 1} "
                f"(seed {winner.image.seed}, {sum(winner.votes)} vote(s) cast){where}"
            )
        return "\n".join(lines)[:2000]

    # After a restart

    async def _resume(self) -> None:
        await self.bot.wait_until_ready()
        try:
            unfinished = await self.evolve.rows.unfinished()
        except Exception:
            log.exception("evolve: could not read the unfinished evolutions")
            return
        undelivered = {d.generation_id for d in await self.bot.studio.store.undelivered()}
        for evolution in unfinished:
            try:
                await self._resume_one(evolution, undelivered)
            except Exception:
                log.exception("evolve: could not resume %s", evolution.id)

    async def _resume_one(self, evolution: Evolution, undelivered: set[str]) -> None:
        if evolution.state == "voting":
            # Discord may have ended the poll while we were away: its final results close it now.
            await self._close(evolution.id, evolution.round, end=False)
            current = await self.evolve.rows.get(evolution.id)
            if current.state == "voting":
                self._schedule(current)
        elif evolution.state == "polling":  # stopped between claiming the poll and posting it
            async with self._lock(evolution.id):
                await self._post_poll(evolution)
        elif evolution.state == "generating":
            started = await self.evolve.restart_round(evolution)
            if started is not None:
                channel = await self.bot.channel_by_id(int(evolution.thread_id))
                await post_status(self.bot, channel, started)
            elif evolution.generation_id not in undelivered:
                with contextlib.suppress(NotFound):  # delivered before the stop, poll never posted
                    generation = await self.bot.studio.store.get_generation(evolution.generation_id)
                    if generation.is_final:
                        await self.on_generation_delivered(evolution.generation_id)
