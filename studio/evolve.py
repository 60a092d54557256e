"""Evolve by vote: a grid per round, voted on in a poll; the winner is varied into the next round.

The front end (bot/exts/evolve) posts each round's grid and its poll and tells this use case
when a poll closed, with its vote counts. Each step is a compare-and-set in the store
(studio/store/evolutions.py), so a poll's end moves the evolution on once however often, and
by however many paths (Discord's end, our time limit, the owner's button, a restart), it is heard.

Winner rule: the image with the most votes; a tie goes to the lower image number, and a round
with no votes at all carries image 1 forward.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

from studio.acknowledgements import requester_of_row, requester_row
from studio.entities import Generation, ImageRecord, Post, Project, Requester
from studio.errors import InvalidRecipe, NotFound
from studio.generations import GenerationPlan, Generations
from studio.recipe import Draft, Recipe
from studio.refine import VARIATION_STRENGTH, Refine
from studio.store import Store
from studio.store.evolutions import Evolution, EvolutionRound, EvolutionRows
from studio.store.repository import new_id

MIN_ROUNDS, MAX_ROUNDS = 1, 5
DEFAULT_ROUNDS = 3
DEFAULT_MINUTES = 60  # our time limit for a round's vote
MAX_MINUTES = 7 * 24 * 60  # a week: well inside Discord's 32-day poll limit
DEFAULT_BATCH = 4  # images per round (a poll answer each; Discord allows 10 answers)
MAX_POLL_ANSWERS = 10


@dataclass(frozen=True)
class Closed:
    """A round whose poll closed: who won, and what comes next (a generation, or the end)."""

    evolution: Evolution
    round: int
    winner: int
    votes: list[int]
    next_generation: Generation | None


@dataclass(frozen=True)
class Winner:
    round: int
    index: int
    votes: list[int]
    image: ImageRecord
    posts: list[Post]


def check(prompt: str, rounds: int, minutes: int) -> None:
    """One clear sentence for each bad input (nothing is queued)."""
    if not prompt.replace("--", "").strip():
        raise InvalidRecipe(
            "prompt", "The prompt has no words once mentions are removed: describe the image."
        )
    if not MIN_ROUNDS <= rounds <= MAX_ROUNDS:
        raise InvalidRecipe("rounds", f"An evolution runs {MIN_ROUNDS} to {MAX_ROUNDS} rounds.")
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidRecipe("minutes", f"A round's vote lasts 1 to {MAX_MINUTES} minutes (a week).")


def poll_hours(minutes: int) -> int:
    """The poll's own duration on Discord (whole hours, at least 1): our limit ends it sooner."""
    return max(1, math.ceil(minutes / 60))


def winner_of(votes: list[int]) -> int:
    """The most votes; ties (and no votes at all) go to the lowest image number."""
    best = max(votes, default=0)
    return votes.index(best) if votes else 0


class Evolve:
    def __init__(self, store: Store, generations: Generations, refine: Refine) -> None:
        self.store = store
        self.rows = EvolutionRows(store)
        self.generations = generations
        self.refine = refine

    async def prepare(self, requester: Requester, prompt: str, rounds: int, minutes: int) -> GenerationPlan:
        """Round 1's grid, checked like any /imagine (flags in the prompt work)."""
        check(prompt, rounds, minutes)
        plan = await self.generations.prepare(
            requester, prompt, Draft(batch=DEFAULT_BATCH), use_defaults=True, private=False
        )
        if plan.recipe.batch > MAX_POLL_ANSWERS:
            raise InvalidRecipe(
                "batch", f"A poll has at most {MAX_POLL_ANSWERS} answers: use --batch 10 or fewer."
            )
        return plan

    async def begin(
        self,
        plan: GenerationPlan,
        project: Project,
        thread_id: str,
        rounds: int,
        minutes: int,
        generation_id: str,
    ) -> tuple[Evolution, Generation]:
        """Record the evolution (once: a resumed command finds it), then start round 1's grid."""
        now = time.time()
        evolution = Evolution(
            id=generation_id,  # one evolution per command: its first generation's id names it
            owner_id=plan.requester.id,
            requester=requester_row(plan.requester),
            server=plan.requester.server,
            project_id=project.id,
            thread_id=thread_id,
            prompt=plan.recipe.prompt,
            rounds=rounds,
            minutes=minutes,
            round=1,
            state="generating",
            generation_id=generation_id,
            poll_message_id=None,
            closes_at=None,
            created_at=now,
            updated_at=now,
        )
        await self.rows.add(evolution)
        generation = await self._start(plan, project, thread_id, generation_id)
        return await self.rows.get(evolution.id), generation

    async def _start(
        self, plan: GenerationPlan, project: Project, thread_id: str, generation_id: str
    ) -> Generation:
        try:  # a resumed command or round: the generation may exist already
            return await self.store.get_generation(generation_id)
        except NotFound:
            return await self.generations.start(
                plan, project=project, deliver_to=thread_id, generation_id=generation_id
            )

    async def grid_ready(self, generation_id: str) -> Evolution | None:
        """The round's grid was delivered: the evolution whose poll this caller posts, if any
        (once); a failed or cancelled grid ends the evolution."""
        evolution = await self.rows.by_generation(generation_id)
        if evolution is None or evolution.state != "generating":
            return None
        generation = await self.store.get_generation(generation_id)
        if generation.status != "done":
            await self.rows.fail(evolution.id, evolution.round)
            return None
        if not await self.rows.claim_poll(evolution.id, evolution.round):
            return None
        return await self.rows.get(evolution.id)

    async def poll_posted(self, evolution: Evolution, message_id: str) -> Evolution:
        closes_at = time.time() + evolution.minutes * 60
        await self.rows.poll_posted(evolution.id, evolution.round, message_id, closes_at)
        return await self.rows.get(evolution.id)

    async def close(self, evolution: Evolution, votes: list[int]) -> Closed | None:
        """The round's poll closed with ``votes`` (by image): its winner goes on, once.

        None: this round was already closed (by another path, or before a restart)."""
        if evolution.state != "voting":
            return None
        round_no = evolution.round
        generation = await self.store.get_generation(evolution.generation_id)
        votes = (list(votes) + [0] * generation.recipe.batch)[: generation.recipe.batch]
        winner = winner_of(votes)
        if round_no >= evolution.rounds:
            if not await self.rows.close_round(evolution.id, round_no, winner, votes, None):
                return None
            return Closed(await self.rows.get(evolution.id), round_no, winner, votes, None)
        plan = await self._next_plan(evolution, generation.id, winner, round_no + 1)
        next_id = new_id()
        if not await self.rows.close_round(evolution.id, round_no, winner, votes, next_id):
            return None
        started = await self._start_round(evolution, plan, next_id)
        return Closed(await self.rows.get(evolution.id), round_no, winner, votes, started)

    async def _next_plan(
        self, evolution: Evolution, generation_id: str, winner: int, round_no: int
    ) -> GenerationPlan:
        requester = requester_of_row(evolution.requester)
        plan = await self.refine.prepare_vary(requester, generation_id, winner, VARIATION_STRENGTH)
        recipe = Recipe.model_validate({**plan.recipe.model_dump(), "edit": f"evolve round {round_no}"})
        return dataclasses.replace(plan, recipe=recipe)

    async def _start_round(
        self, evolution: Evolution, plan: GenerationPlan, generation_id: str
    ) -> Generation:
        project = await self.store.get_project(evolution.project_id)
        return await self._start(plan, project, evolution.thread_id, generation_id)

    async def restart_round(self, evolution: Evolution) -> Generation | None:
        """After a restart: a round recorded as next but whose grid never started is started now."""
        if evolution.state != "generating" or evolution.round == 1:
            return None
        try:
            await self.store.get_generation(evolution.generation_id)
            return None
        except NotFound:
            pass
        previous = [r for r in await self.rows.rounds_of(evolution.id) if r.round == evolution.round - 1]
        if not previous or previous[0].winner is None:
            return None
        plan = await self._next_plan(
            evolution, previous[0].generation_id, previous[0].winner, evolution.round
        )
        return await self._start_round(evolution, plan, evolution.generation_id)

    async def fail(self, evolution: Evolution) -> None:
        await self.rows.fail(evolution.id, evolution.round)

    async def winners(self, evolution_id: str) -> list[Winner]:
        """The lineage of winners, round by round, with where each grid was posted."""
        found: list[Winner] = []
        rounds: list[EvolutionRound] = await self.rows.rounds_of(evolution_id)
        for r in rounds:
            if r.winner is None:
                continue
            image = await self.store.image_at(r.generation_id, r.winner)
            posts = await self.store.posts_of(r.generation_id)
            found.append(Winner(r.round, r.winner, r.votes or [], image, posts))
        return found
