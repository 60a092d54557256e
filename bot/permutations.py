"""`/imagine a {red, blue} fox`: one project thread, one job per prompt (studio/permutations.py).

Above ``permutation_confirm_above`` prompts the command first asks, ephemerally, with Confirm and
Cancel buttons. Confirm runs the same /imagine again as a command of its own (recorded, resumable)
with ``confirmed`` set; Cancel queues nothing. The buttons name the asking command's record, so
they work after a restart for as long as Discord shows them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.interactions import guarded, reply
from bot.pending import ORIGINAL, Command
from bot.projects import post_status
from bot.render import NO_PINGS
from studio.entities import Generation, Requester
from studio.errors import StudioError
from studio.generations import GenerationPlan
from studio.permutations import ConfirmPermutations, prepare_set, start_set

if TYPE_CHECKING:
    from bot.app import AtelierBot

_confirmed: set[str] = set()  # asking commands already confirmed (a double click starts one set)


class Permuted:
    """Prepares an /imagine through its permutations; asks first above the threshold."""

    def __init__(self, bot: AtelierBot, command: Command) -> None:
        self.bot = bot
        self.command = command

    async def prepare(
        self, requester: Requester, text: str, options: Any, **prepare: Any
    ) -> tuple[GenerationPlan, ...] | None:
        """The plans (one without ``{...}``), or None once the person was asked to confirm."""
        try:
            return await prepare_set(
                self.bot.studio.generations,
                requester,
                text,
                options,
                confirmed=bool(self.command.options.get("confirmed")),
                **prepare,
            )
        except ConfirmPermutations as asked:
            await ask(self.bot, self.command, asked.count)
            return None


async def ask(bot: AtelierBot, command: Command, count: int) -> None:
    """The ephemeral question, in place of "thinking…"."""
    view = discord.ui.View(timeout=None)
    view.add_item(ConfirmButton(command.ack.id, True))
    view.add_item(ConfirmButton(command.ack.id, False))
    text = f"Those `{{...}}` options make **{count} prompts**, so {count} jobs. Queue them all?"
    if command.interaction is not None:
        await command.interaction.followup.send(text, view=view, ephemeral=True, allowed_mentions=NO_PINGS)
    else:
        webhook = discord.Webhook.partial(int(command.ack.application_id), command.ack.token, client=bot)
        await webhook.edit_message(ORIGINAL, content=text, view=view, allowed_mentions=NO_PINGS)


async def start_permuted(
    cog: Any, command: Command, plans: tuple[GenerationPlan, ...], title: str
) -> list[Generation]:
    """Open (or reuse) the project thread and start the set there, a status message per job."""
    bot: AtelierBot = cog.bot
    requester = command.requester
    channel = await command.channel()
    target, project = await cog._target(command, channel, requester, title, plans[0].private)
    await command.working_in(target)

    async def posted(generation: Generation) -> None:
        await post_status(bot, target, generation)

    started = await start_set(
        bot.studio.generations,
        plans,
        command.generation_id,
        project=project,
        deliver_to=str(target.id),
        on_started=posted,
    )
    command.remember_limit()
    await command.answer(f"On it — {len(plans)} prompts, follow along in {target.mention}.")
    return started


def thread_title(text: str) -> str:
    """The prompt as written, flags left out: ``a {red, blue} fox``."""
    return re.split(r"\s--?[A-Za-z—]", f" {text}", maxsplit=1)[0].strip() or text.strip()


class ConfirmButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"at:pm:(?P<ack>\d{1,20}):(?P<yes>[yn])",
):
    def __init__(self, ack_id: str, yes: bool) -> None:
        super().__init__(
            discord.ui.Button(
                label="Confirm" if yes else "Cancel",
                style=discord.ButtonStyle.success if yes else discord.ButtonStyle.secondary,
                custom_id=f"at:pm:{ack_id}:{'y' if yes else 'n'}",
            )
        )
        self.ack_id = ack_id
        self.yes = yes

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ConfirmButton:
        return cls(match["ack"], match["yes"] == "y")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with guarded(interaction):
            await confirmed(interaction, self.ack_id, self.yes)


async def confirmed(interaction: discord.Interaction[Any], ack_id: str, yes: bool) -> None:
    """Confirm: the asking /imagine again, confirmed, as a command of its own. Cancel: nothing."""
    bot: AtelierBot = interaction.client  # type: ignore[assignment]
    asked = await bot.studio.store.interactions.get(ack_id)
    if asked is None or asked.user_id != str(interaction.user.id):
        raise StudioError("That question has expired; run /imagine again.")
    if not yes:
        await interaction.response.edit_message(content="Cancelled: nothing was queued.", view=None)
        return
    if ack_id in _confirmed:
        await reply(interaction, "Already confirmed — those prompts are on their way.")
        return
    _confirmed.add(ack_id)

    async def take_the_buttons_off() -> None:  # the click's first response: the question is settled
        await interaction.response.edit_message(content=f"{asked_text(interaction)} — confirmed.", view=None)

    command = await bot.pending.acknowledge(
        interaction, "imagine", {**asked.options, "confirmed": True}, respond=take_the_buttons_off
    )
    if command is not None:
        await bot.pending.run(command)


def asked_text(interaction: discord.Interaction[Any]) -> str:
    return interaction.message.content if interaction.message is not None else "Queue them all?"
