from __future__ import annotations

from pathlib import Path

import pytest

from studio.errors import CatalogueError, InvalidRecipe
from studio.ideate import GROUPS, KEYWORDS_PER_GROUP, SUGGESTIONS, brainstorm, load_vocabulary

ROOT = Path(__file__).resolve().parents[2]
VOCABULARY = load_vocabulary(ROOT / "config" / "vocabulary.toml")


def test_brainstorms_are_deterministic_per_concept_and_seed() -> None:
    first = brainstorm("a cosy tea house in the rain", 7, VOCABULARY)
    assert brainstorm("a  cosy tea house in the rain ", 7, VOCABULARY) == first
    assert brainstorm("a cosy tea house in the rain", 8, VOCABULARY) != first
    assert brainstorm("a lighthouse", 7, VOCABULARY).keywords != first.keywords
    assert list(first.keywords) == list(GROUPS)
    for group, words in first.keywords.items():
        assert len(set(words)) == KEYWORDS_PER_GROUP and set(words) <= set(VOCABULARY.banks[group])
    assert len(first.prompts) == SUGGESTIONS and len(set(first.prompts)) == SUGGESTIONS
    assert all(p.startswith("a cosy tea house in the rain, ") for p in first.prompts)


def test_bad_concepts_and_banks(tmp_path: Path) -> None:
    with pytest.raises(InvalidRecipe, match="Describe your concept"):
        brainstorm("   ", 1, VOCABULARY)
    with pytest.raises(InvalidRecipe, match="300 characters at most"):
        brainstorm("x" * 301, 1, VOCABULARY)
    path = tmp_path / "vocabulary.toml"
    path.write_text('subject = ["a", "b"]\n')
    with pytest.raises(CatalogueError, match="group `subject`: needs a list of at least 5 terms"):
        load_vocabulary(path)
