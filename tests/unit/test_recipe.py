from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.catalogue import Catalogue, ModelEntry
from studio.errors import InvalidRecipe, UnknownFlag, UnknownModel
from studio.families import ASPECTS
from studio.recipe import MAX_SEED, SAMPLERS, Draft, LoraRef, Recipe, is_flag, parse_prompt, resolve

CATALOGUE = Catalogue(
    {
        "sd15": ModelEntry(id="sd15", family="sd15", source="org/sd15", description="sd"),
        "sdxl": ModelEntry(id="sdxl", family="sdxl", source="org/sdxl", description="xl", steps=30),
        "tiny": ModelEntry(id="tiny", family="sd15", source="org/tiny", description="t", size=64, steps=4),
    },
    default="sd15",
)


def plan(text: str, options: Draft | None = None) -> Recipe:
    draft = parse_prompt(text)
    return resolve(draft.merged(options) if options else draft, CATALOGUE, random_seed=7)


def test_midjourney_flags_parse() -> None:
    draft = parse_prompt(
        "a lighthouse at dusk --ar 3:2 --no blurry, text --seed 42 --steps 30 --cfg 6.5 --batch 4 "
        "--lora ink:0.8"
    )
    assert draft == Draft(
        prompt="a lighthouse at dusk",
        aspect="3:2",
        negative_prompt="blurry, text",
        seed=42,
        steps=30,
        guidance=6.5,
        batch=4,
        loras=(LoraRef(name="ink", weight=0.8),),
    )


def test_flags_anywhere_and_em_dash() -> None:
    draft = parse_prompt("—ar 16:9 a cat --seed 3 on a mat")
    assert draft.prompt == "a cat on a mat"
    assert draft.aspect == "16:9" and draft.seed == 3


def test_aspect_sizes_per_family() -> None:
    assert (plan("x --ar 3:2").width, plan("x --ar 3:2").height) == (768, 512)
    assert (plan("x --ar 3:2 --model sdxl").width, plan("x --ar 3:2 --model sdxl").height) == (1216, 832)
    assert (plan("x --ar 3:2 --model tiny").width, plan("x --ar 3:2 --model tiny").height) == (96, 64)
    for aspect in ASPECTS:
        for model in ("sd15", "sdxl", "tiny"):
            recipe = plan(f"x --ar {aspect} --model {model}")
            assert recipe.width % 8 == 0 and recipe.height % 8 == 0
            w, h = (int(n) for n in aspect.split(":"))
            assert abs(recipe.width / recipe.height - w / h) < 0.12


def test_defaults_come_from_the_model() -> None:
    recipe = plan("a cat --model sdxl")
    assert (recipe.steps, recipe.width, recipe.height, recipe.seed, recipe.batch) == (30, 1024, 1024, 7, 1)


def test_explicit_options_win_over_flags() -> None:
    recipe = plan("a cat --seed 1 --ar 3:2 --batch 2", Draft(seed=5, batch=4, width=512, height=512))
    assert (recipe.seed, recipe.batch, recipe.width, recipe.height, recipe.aspect) == (5, 4, 512, 512, None)
    recipe = plan("a cat --size 512x768", Draft(aspect="16:9"))
    assert recipe.aspect == "16:9" and recipe.width == 912


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("a cat --batch 0", "batch", "between 1 and 8"),
        ("a cat --batch 99", "batch", "between 1 and 8"),
        ("a cat --size 500x512", "width", "multiple of 8"),
        ("a cat --size 4096x512", "width", "between 32 and 1536"),
        ("a cat --steps 10000", "steps", "between 1 and 150"),
        ("a cat --seed -1", "seed", "between 0 and 4294967295"),
        ("a cat --seed 4294967296", "seed", "between 0 and 4294967295"),
        ("a cat --cfg 31", "guidance", "between 0 and 30"),
        ("a cat --cfg nan", "--cfg", "finite"),
        ("a cat --ar 5:4", "aspect", "must be one of"),
        ("a cat --seed abc", "--seed", "whole number"),
        ("a cat --seed", "--seed", "needs a value"),
        ("--seed 3", "prompt", "empty"),
        ("x" * 10_000, "prompt", "the limit is 2000"),
        ("a cat --lora ink:0.5 --lora INK", "lora", "named once"),
        ("a cat --lora a1 --lora b1 --lora c1 --lora d1 --lora e1", "lora", "At most 4"),
        ("a cat --lora ink:lots", "--lora", "needs a number"),
        ("a cat --lora ../x", "lora", "NAME or NAME:WEIGHT"),
        ("a cat --sampler plms", "sampler", "must be one of"),
    ],
)
def test_bad_values_are_refused_with_a_clear_sentence(text: str, field: str, words: str) -> None:
    with pytest.raises(InvalidRecipe) as caught:
        plan(text)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_flag_and_model() -> None:
    with pytest.raises(UnknownFlag, match="Unknown flag `--wat`"):
        plan("a cat --wat 3")
    with pytest.raises(UnknownModel, match=r"Unknown model `nope`\. Available models: sd15, sdxl, tiny\."):
        plan("a cat --model nope")


def test_recipe_json_round_trip_and_immutability() -> None:
    recipe = plan("a cat --no dogs --seed 4294967295 --batch 3")
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert recipe.seed_for(1) == 0  # seeds wrap, one per image
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error
        recipe.seed = 3  # type: ignore[misc]


def test_a1111_parameters_text() -> None:
    recipe = plan("a lighthouse --no blurry --seed 42 --steps 30 --cfg 6.5 --ar 3:2 --batch 4")
    assert recipe.to_a1111(2) == (
        "a lighthouse\nNegative prompt: blurry\n"
        "Steps: 30, Sampler: DPM++ 2M, CFG scale: 6.5, Seed: 44, Size: 768x512, Model: sd15, Version: Atelier"
    )


def test_recipe_renders_back_to_prompt_text() -> None:
    recipe = plan("a lighthouse --no blurry --seed 42 --ar 3:2 --batch 4 --model tiny")
    again = plan(recipe.to_prompt_text())
    assert again == recipe


_word = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Z", "C")), min_size=1, max_size=8
).filter(lambda w: not is_flag(w) and not w.startswith("—"))
_text = st.lists(_word, min_size=1, max_size=6).map(" ".join)
_drafts = st.builds(
    Draft,
    prompt=_text,
    negative_prompt=st.none() | _text,
    model=st.none() | st.sampled_from(["sd15", "sdxl", "tiny"]),
    aspect=st.none() | st.sampled_from(ASPECTS),
    seed=st.none() | st.integers(0, MAX_SEED),
    steps=st.none() | st.integers(1, 150),
    guidance=st.none() | st.floats(0, 30, allow_nan=False),
    batch=st.none() | st.integers(1, 8),
    sampler=st.none() | st.sampled_from(sorted(SAMPLERS)),
    loras=st.none()
    | st.lists(
        st.builds(
            LoraRef, name=st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True), weight=st.floats(-4, 4)
        ),
        min_size=1,
        max_size=3,
    ).map(tuple),
    strength=st.none() | st.floats(0.01, 1),
    style=st.none() | st.sampled_from(["cinematic", "noir", "my-style_2"]),
)


@settings(max_examples=300, deadline=None)
@given(_drafts)
def test_inline_flags_round_trip(draft: Draft) -> None:
    assert parse_prompt(draft.render()) == draft


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidRecipe, UnknownModel):
        plan(text)
