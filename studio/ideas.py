"""Brainstorms (/ideate): keywords and suggested prompts for a concept, and generating one."""

from __future__ import annotations

import secrets

from studio.entities import Ideation, Project, Requester
from studio.errors import NotFound, NotYours
from studio.generations import GenerationPlan, Generations
from studio.ideate import Brainstorm, Vocabulary, brainstorm
from studio.preferences import Preferences
from studio.store import Store


class Ideas:
    def __init__(
        self, vocabulary: Vocabulary, store: Store, generations: Generations, preferences: Preferences
    ) -> None:
        self.vocabulary = vocabulary
        self.store = store
        self.generations = generations
        self.preferences = preferences

    def ideate(self, concept: str, seed: int | None = None) -> Brainstorm:
        """Keywords in five groups and suggested prompts for a concept (same seed, same ideas)."""
        return brainstorm(concept, secrets.randbits(31) if seed is None else seed, self.vocabulary)

    async def record(self, requester: Requester, project: Project, message_id: str, idea: Brainstorm) -> None:
        """The message showing a brainstorm, so its buttons find it again (the requester owns it)."""
        await self.store.add_ideation(Ideation(message_id, project.id, requester.id, idea.concept, idea.seed))

    async def shuffle(self, requester: Requester, message_id: str) -> Brainstorm:
        """New suggestions for a brainstorm: its owner only."""
        found = await self._ideation(message_id)
        if found.owner_id != requester.id:
            raise NotYours("Only the person who started this brainstorm can shuffle it.")
        idea = self.ideate(found.concept)
        await self.store.reseed_ideation(message_id, idea.seed)
        return idea

    async def prepare(self, requester: Requester, message_id: str, index: int) -> GenerationPlan:
        """Suggested prompt ``index`` of a brainstorm, in its project, the person's defaults beneath."""
        found = await self._ideation(message_id)
        idea = brainstorm(found.concept, found.seed, self.vocabulary)
        if not 0 <= index < len(idea.prompts):
            raise NotFound("That suggestion does not exist.")
        recipe = self.generations.recipe(
            idea.prompts[index], defaults=await self.preferences.defaults_for(requester)
        )
        project = await self.store.get_project(found.project_id)
        plan = GenerationPlan(requester, recipe, project)
        await self.generations.check(plan)
        return plan

    async def _ideation(self, message_id: str) -> Ideation:
        found = await self.store.ideation(message_id)
        if found is None:
            raise NotFound("That brainstorm is no longer known; run /ideate again.")
        return found
