"""`{a, b}` permutations, `--chaos` jitter and `--tile`'s family rule, without models."""

from __future__ import annotations

import pytest

from studio import chaos
from studio.errors import InvalidRecipe
from studio.permutations import count, expand, has_permutations, member_id
from studio.recipe import Recipe, parse_prompt


def test_groups_expand_and_multiply_in_order() -> None:
    assert expand("a {red, blue} fox", 16) == ["a red fox", "a blue fox"]
    assert expand("{a, b} {c, d}", 16) == ["a c", "a d", "b c", "b d"]
    assert count("{a, b} {c, d} {e, f}") == 8


def test_braces_work_inside_flags_and_nest_and_escape() -> None:
    assert expand("a fox --ar {1:1, 3:2}", 16) == ["a fox --ar 1:1", "a fox --ar 3:2"]
    assert [parse_prompt(t).aspect for t in expand("a fox --ar {1:1, 3:2}", 16)] == ["1:1", "3:2"]
    assert expand("a {b, {c, d} e} f", 16) == ["a b f", "a c e f", "a d e f"]
    assert expand(r"x {a\, b, c}", 16) == ["x a, b", "x c"]
    assert not has_permutations(r"a \{literal\} brace") and has_permutations("a } b")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a {red, blue fox", "without its `}`"),
        ("a red} fox", "without its `{`"),
        ("a {red,, blue} fox", "empty option"),
        ("a {} fox", "empty option"),
        ("a { , blue} fox", "empty option"),
    ],
)
def test_malformed_groups_are_one_sentence(text: str, words: str) -> None:
    with pytest.raises(InvalidRecipe, match=words) as raised:
        expand(text, 16)
    assert str(raised.value).endswith(".") and "\n" not in str(raised.value)


def test_the_cap_is_counted_before_anything_is_built() -> None:
    runaway = "{a, b} " * 40  # 2**40 prompts: refused at once, never built
    with pytest.raises(InvalidRecipe, match=r"make 1099511627776 prompts; the limit is 16"):
        expand(runaway, 16)
    assert len(expand("{a, b} " * 4, 16)) == 16


def test_set_members_get_ids_derived_from_the_command_and_the_last_its_own() -> None:
    ids = [member_id("ab" * 16, n, 3) for n in range(3)]
    assert ids[2] == "ab" * 16 and len(set(ids)) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert ids == [member_id("ab" * 16, n, 3) for n in range(3)]


def recipe(**changes: object) -> Recipe:
    base = Recipe(
        model="m",
        family="sd15",
        prompt="a lighthouse, stormy sea, oil painting, dusk, gulls",
        seed=1000,
        steps=4,
        guidance=6.0,
        width=64,
        height=64,
        batch=4,
    )
    return Recipe.model_validate({**base.model_dump(), **changes})  # validated, unlike model_copy


def test_chaos_zero_changes_nothing() -> None:
    drawn = chaos.for_image(recipe(), 2)
    assert drawn.recipe == recipe().for_image(2) and drawn.offset == 0


def test_chaos_is_drawn_from_the_image_seed_alone() -> None:
    batch = recipe(chaos=100)
    for index in range(batch.batch):
        # image i of the batch and its own single-image recipe get the same jitter
        assert chaos.for_image(batch, index) == chaos.jitter(batch.for_image(index))
        assert chaos.for_image(batch, index) == chaos.for_image(batch.for_image(index), 0)
    drawn = [chaos.for_image(batch, i) for i in range(8)]
    guidances = [d.recipe.guidance for d in drawn]
    assert len(set(guidances)) == 8 and all(3.0 <= g <= 12.0 for g in guidances)
    assert {d.recipe.prompt.split(",")[0] for d in drawn} == {"a lighthouse"}  # the subject stays first
    assert len({d.recipe.prompt for d in drawn}) > 1  # the rest is reordered for some
    assert all(sorted(d.recipe.prompt.split(", ")) == sorted(batch.prompt.split(", ")) for d in drawn)
    assert all(d.offset == pytest.approx(chaos.NOISE_OFFSET) for d in drawn)


def test_less_chaos_jitters_less() -> None:
    spread = {
        n: max(abs(chaos.for_image(recipe(chaos=n), i).recipe.guidance - 6.0) for i in range(16))
        for n in (10, 100)
    }
    assert spread[10] < spread[100] and spread[10] <= 6.0 * (2**0.1 - 1) + 1e-6


def test_chaos_out_of_range_and_tile_on_transformers_are_refused() -> None:
    with pytest.raises(InvalidRecipe, match=r"`--chaos` must be between 0 and 100 \(got 101\)"):
        recipe(chaos=101)
    for family in ("flux", "sd3"):
        with pytest.raises(InvalidRecipe, match=r"`--tile` works with SD 1\.5 and SDXL models only"):
            recipe(family=family, tile=True, sampler="euler", width=64, height=64)
    assert recipe(family="sdxl", tile=True).tile
    assert parse_prompt("a floor --tile --chaos 40").model_dump(exclude_none=True) == {
        "prompt": "a floor",
        "tile": True,
        "chaos": 40,
    }
