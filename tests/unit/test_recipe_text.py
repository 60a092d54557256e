"""A recipe's prompt text (what /lineage shows) pastes back into /imagine as the same settings."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render import UPLOAD_TIERS, code, limit_after_413
from studio.recipe import MAX_SEED, SAMPLERS, Draft, LoraRef, Recipe, parse_prompt, resolve
from studio.styles import Style, StyleBook
from tests.unit.test_recipe import CATALOGUE

STYLES = StyleBook(
    {
        "noir": Style(
            name="noir", description="film noir", prompt="film noir scene of {prompt}", negative="colour"
        )
    }
)
INIT = "a" * 64
MASK = "b" * 64
MIB = 1024 * 1024


def make(text: str, init: str | None = None, **update: object) -> Recipe:
    recipe = resolve(parse_prompt(text), CATALOGUE, random_seed=7, init_image=init, styles=STYLES)
    return Recipe.model_validate({**recipe.model_dump(), **update}) if update else recipe


def pasted(recipe: Recipe) -> Recipe:
    """What /imagine makes of the recipe's text (no init image: a pasted text has none)."""
    return resolve(parse_prompt(recipe.to_prompt_text()), CATALOGUE, random_seed=99, styles=STYLES)


def settings_of(recipe: Recipe) -> dict[str, object]:
    """Everything text can carry (not the init image, mask, parent link or display-only style)."""
    return recipe.model_dump(exclude={"init_image", "strength", "mask", "parent_image", "style"})


KINDS = {
    "txt2img": make("a lighthouse at dusk --ar 3:2 --no blurry, text --seed 42 --steps 30 --cfg 6.5"),
    "exact size, sampler and LoRAs": make(
        "a red kite --size 96x64 --sampler euler_a --lora ink:0.8 --lora mychar --model tiny --batch 4"
    ),
    "styled": make("a harbour at night --style noir --seed 3"),
    "img2img from an upload": make("the same barn in winter --strength 0.5 --seed 5", init=INIT),
    "variation": make("an old oak --seed 11", init=INIT, strength=0.35, parent_image="p1").for_image(0),
    "inpaint": make(
        "a blue door --size 88x64 --model tiny", init=INIT, strength=0.85, mask=MASK, aspect=None
    ).for_image(0),
    "remix": make("an old oak at night --seed 12", parent_image="p2"),
}


def test_each_kind_of_recipe_pastes_back_as_the_same_settings() -> None:
    for kind, recipe in KINDS.items():
        again = pasted(recipe)
        assert settings_of(again) == settings_of(recipe), kind
        assert again.init_image is None and again.strength is None and again.mask is None, kind


def test_an_img2img_text_with_its_image_again_keeps_the_strength() -> None:
    """/remix with the same upload and the pasted text: the strength applies again."""
    for kind in ("img2img from an upload", "variation", "inpaint"):
        recipe = KINDS[kind]
        again = resolve(parse_prompt(recipe.to_prompt_text()), CATALOGUE, 1, init_image=INIT, styles=STYLES)
        assert again.strength == recipe.strength and settings_of(again) == settings_of(recipe), kind


_words = st.lists(
    st.sampled_from(["a", "misty", "harbour", "(boat:1.2)", "ink++", "at", "dawn", "é", "—"]), min_size=1
)
_recipes = st.builds(
    Draft,
    prompt=_words.map(" ".join),
    negative_prompt=st.none() | _words.map(" ".join),
    model=st.sampled_from(["sd15", "sdxl", "tiny"]),
    aspect=st.none() | st.sampled_from(["1:1", "3:2", "9:16"]),
    seed=st.integers(0, MAX_SEED),
    steps=st.integers(1, 150),
    guidance=st.floats(0, 30, allow_nan=False),
    batch=st.integers(1, 8),
    sampler=st.sampled_from(sorted(SAMPLERS)),
    loras=st.none() | st.just((LoraRef(name="ink", weight=0.75),)),
)


@settings(max_examples=200, deadline=None)
@given(_recipes, st.none() | st.floats(0.05, 1), st.booleans())
def test_any_recipe_pastes_back(draft: Draft, strength: float | None, from_image: bool) -> None:
    init = INIT if from_image else None
    recipe = resolve(draft.merged(Draft(strength=strength)), CATALOGUE, 1, init_image=init)
    assert settings_of(pasted(recipe)) == settings_of(recipe)


def test_inline_code_keeps_backticks() -> None:
    assert code("a cat --seed 1") == "`a cat --seed 1`"
    assert code("a `quoted` cat") == "`` a `quoted` cat ``"


def test_after_a_413_the_next_try_fits_the_next_discord_limit_not_half() -> None:
    assert limit_after_413(12 * MIB) == 10 * MIB  # not 6 MiB
    assert limit_after_413(60 * MIB) == 50 * MIB
    assert limit_after_413(10 * MIB) == 8 * MIB
    assert limit_after_413(4 * MIB) == 2 * MIB  # below every limit Discord uses: halve
    assert limit_after_413(12 * MIB, "file of 12582912 bytes > limit 6000") == 6000  # Discord told it
    assert limit_after_413(5000, "limit 6000") == 2500  # a told limit above what failed is not believed
    assert sorted(UPLOAD_TIERS, reverse=True) == list(UPLOAD_TIERS)
