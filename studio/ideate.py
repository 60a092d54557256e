"""Brainstorming from a one-sentence concept: keywords in five groups and suggested prompts.

Curated vocabulary banks (config/vocabulary.toml), no external service; the same concept and
seed always give the same brainstorm.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from studio.errors import CatalogueError, InvalidRecipe
from studio.tomlfile import read_toml

GROUPS: tuple[str, ...] = ("subject", "style", "mood", "lighting", "technical")
KEYWORDS_PER_GROUP = 5
SUGGESTIONS = 4
MAX_CONCEPT_CHARS = 300


@dataclass(frozen=True)
class Vocabulary:
    banks: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Brainstorm:
    concept: str
    seed: int
    keywords: dict[str, list[str]]
    prompts: list[str]


def load_vocabulary(path: str | Path) -> Vocabulary:
    where = str(Path(path))
    data = read_toml(path)
    banks: dict[str, tuple[str, ...]] = {}
    for group in GROUPS:
        terms = data.get(group)
        if not isinstance(terms, list) or len(terms) < KEYWORDS_PER_GROUP:
            raise CatalogueError(
                where, f"needs a list of at least {KEYWORDS_PER_GROUP} terms", group, kind="group"
            )
        if not all(isinstance(t, str) and t.strip() for t in terms):
            raise CatalogueError(where, "every term must be non-empty text", group, kind="group")
        banks[group] = tuple(dict.fromkeys(t.strip() for t in terms))
    return Vocabulary(banks)


def brainstorm(concept: str, seed: int, vocabulary: Vocabulary) -> Brainstorm:
    text = " ".join(concept.split())
    if not text:
        raise InvalidRecipe(
            "concept", "Describe your concept in one sentence, e.g. “a cosy tea house in the rain”."
        )
    if len(text) > MAX_CONCEPT_CHARS:
        raise InvalidRecipe(
            "concept", f"Keep the concept to one sentence ({MAX_CONCEPT_CHARS} characters at most)."
        )
    # A stable seed from the concept too: hash() is salted per process, sha256 is not.
    digest = hashlib.sha256(f"{seed}:{text.lower()}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    keywords = {group: rng.sample(vocabulary.banks[group], KEYWORDS_PER_GROUP) for group in GROUPS}
    prompts = []
    for n in range(SUGGESTIONS):
        parts = [
            text,
            keywords["style"][n],
            keywords["mood"][n],
            keywords["lighting"][n],
            keywords["technical"][n],
        ]
        if n % 2:  # every other suggestion also borrows a subject for a twist
            parts.insert(1, f"with {keywords['subject'][n]}")
        prompts.append(", ".join(parts))
    return Brainstorm(text, seed, keywords, prompts)
