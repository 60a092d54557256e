"""The recipe rules of each family: sizes, samplers, negative prompts and prompt weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.catalogue import Catalogue, ModelEntry, load_catalogue
from studio.errors import CatalogueError, InvalidRecipe
from studio.families import ASPECTS
from studio.recipe import Draft, Recipe, parse_prompt, resolve
from studio.styles import Style, StyleBook

CATALOGUE = Catalogue(
    {
        "sd15": ModelEntry(id="sd15", family="sd15", source="org/sd15", description="sd"),
        "ancestral": ModelEntry(
            id="ancestral", family="sd15", source="org/a", description="a", scheduler="euler_a"
        ),
        "dev": ModelEntry(id="dev", family="flux", source="org/dev", description="flux dev"),
        "schnell": ModelEntry(
            id="schnell", family="flux", source="org/schnell", description="s", steps=4, guidance=0
        ),
        "dev-cfg": ModelEntry(id="dev-cfg", family="flux", source="org/d", description="d", true_cfg=4.0),
        "sd35": ModelEntry(id="sd35", family="sd3", source="org/sd35", description="sd 3.5"),
        "tiny-flux": ModelEntry(id="tiny-flux", family="flux", source="org/t", description="t", size=64),
    },
    default="sd15",
)
STYLES = StyleBook(
    {"moody": Style(name="moody", description="m", prompt="{prompt}, moody light", negative="bright")}
)


def plan(text: str, options: Draft | None = None) -> Recipe:
    draft = parse_prompt(text)
    return resolve(draft.merged(options) if options else draft, CATALOGUE, random_seed=7, styles=STYLES)


def refusal(text: str) -> InvalidRecipe:
    with pytest.raises(InvalidRecipe) as caught:
        plan(text)
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")
    return caught.value


@pytest.mark.parametrize("model", ["dev", "sd35", "tiny-flux"])
def test_flow_families_sizes_are_multiples_of_16_at_every_aspect(model: str) -> None:
    for aspect in ASPECTS:
        recipe = plan(f"a cat --model {model} --ar {aspect}")
        assert recipe.width % 16 == 0 and recipe.height % 16 == 0
        w, h = (int(n) for n in aspect.split(":"))
        if model != "tiny-flux":  # 64 px in steps of 16 cannot keep every ratio
            assert abs(recipe.width / recipe.height - w / h) < 0.12
            assert 0.9e6 < recipe.width * recipe.height < 1.1e6  # around one megapixel


def test_megapixel_buckets_of_flux_and_sd3() -> None:
    assert (plan("x --model dev --ar 16:9").width, plan("x --model dev --ar 16:9").height) == (1344, 768)
    assert (plan("x --model sd35 --ar 2:3").width, plan("x --model sd35 --ar 2:3").height) == (832, 1216)
    assert (plan("x --model tiny-flux --ar 3:2").width, plan("x --model tiny-flux --ar 3:2").height) == (
        80,
        48,
    )


def test_a_size_off_the_family_multiple_is_refused_in_words() -> None:
    error = refusal("a cat --model dev --size 1000x1024")
    assert error.field == "width" and "multiple of 16 for Flux.1 models (got 1000)" in str(error)
    assert refusal("a cat --model sd35 --size 1024x1000").field == "height"
    assert str(refusal("a cat --size 500x512")) == "The width must be a multiple of 8 (got 500)."
    assert plan("a cat --size 1000x1024").width == 1000  # SD 1.5 takes multiples of 8


def test_samplers_come_from_the_family_and_the_catalogue_entry() -> None:
    assert plan("a cat --model dev").sampler == "euler"
    assert plan("a cat --model sd35").sampler == "euler"
    assert plan("a cat").sampler == "dpmpp_2m"
    assert plan("a cat --model ancestral").sampler == "euler_a"
    assert plan("a cat --model ancestral --sampler ddim").sampler == "ddim"
    error = refusal("a cat --model dev --sampler dpmpp_2m")
    assert error.field == "sampler" and "Flux.1 models sample with euler only (got dpmpp_2m)" in str(error)
    assert "SD 3.5 models sample with euler only" in str(refusal("a cat --model sd35 --sampler ddim"))


def test_model_defaults_for_schnell_and_dev() -> None:
    schnell, dev = plan("a cat --model schnell"), plan("a cat --model dev")
    assert (schnell.steps, schnell.guidance) == (4, 0.0)
    assert (dev.steps, dev.guidance, dev.width, dev.height) == (28, 3.5, 1024, 1024)
    assert (plan("x --model sd35").steps, plan("x --model sd35").guidance) == (28, 4.5)


def test_flux_refuses_a_negative_prompt_unless_the_model_has_true_cfg() -> None:
    error = refusal("a cat --model dev --no dogs")
    assert error.field == "negative_prompt"
    assert str(error).startswith("Flux.1 models take no negative prompt;")
    with pytest.raises(InvalidRecipe, match="no negative prompt"):
        plan("a cat --model dev", Draft(negative_prompt="dogs"))
    assert plan("a cat --model dev-cfg --no dogs").negative_prompt == "dogs"
    assert plan("a cat --model sd35 --no dogs").negative_prompt == "dogs"


def test_a_styles_negative_is_dropped_for_models_that_take_none() -> None:
    dev = plan("a cat --model dev --style moody")
    assert (dev.prompt, dev.negative_prompt) == ("a cat, moody light", "")
    assert plan("a cat --model dev-cfg --style moody").negative_prompt == "bright"
    assert plan("a cat --model sd35 --style moody --no dogs").negative_prompt == "dogs, bright"


@pytest.mark.parametrize(
    "weighted", ["(red:1.3) cat", "(red)1.3 cat", "red++ cat", "a red-- cat", "(red)++ cat"]
)
def test_sd3_refuses_explicit_prompt_weights(weighted: str) -> None:
    error = refusal(f"{weighted} --model sd35")
    assert error.field == "prompt" and "SD 3.5 models take no prompt weights such as" in str(error)
    assert plan(f"{weighted} --model dev").prompt == weighted  # Flux weighs through compel
    assert plan(f"{weighted}").prompt == weighted


def test_sd3_refuses_weights_in_the_negative_and_blends_too() -> None:
    assert refusal("a cat --model sd35 --no (dogs:1.5)").field == "negative_prompt"
    assert "`.blend(`" in str(refusal('("a cat", "a dog").blend(0.5, 0.5) --model sd35'))


@pytest.mark.parametrize(
    "plain", ["a cat (on a mat)", "a well-known place", "a (very) big dog, 2 cats", "(a)(b) 3"]
)
def test_sd3_keeps_plain_parentheses_and_dashes_as_text(plain: str) -> None:
    assert plan(f"{plain} --model sd35").prompt == plain


def test_recipes_of_the_new_families_round_trip_as_text_and_json() -> None:
    for text in ("a lighthouse --model tiny-flux --ar 3:2 --seed 4 --batch 2", "a cat --model sd35 --no fog"):
        recipe = plan(text)
        assert plan(recipe.to_prompt_text()) == recipe
        assert Recipe.from_json(recipe.to_json()) == recipe
        assert "Sampler: Euler," in recipe.to_a1111()


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_the_catalogue_refuses_a_scheduler_the_family_lacks(tmp_path: Path) -> None:
    good = write(tmp_path, '[models.dev]\nfamily = "flux"\nsource = "org/dev"\ndescription = "d"\n')
    assert load_catalogue(good).get("dev").default_sampler == "euler"
    bad = write(
        tmp_path,
        '[models.dev]\nfamily = "flux"\nsource = "org/dev"\ndescription = "d"\nscheduler = "dpmpp_2m"\n',
    )
    with pytest.raises(
        CatalogueError, match=r"scheduler `dpmpp_2m` is not a sampler of Flux\.1 models; use euler"
    ):
        load_catalogue(bad)


def test_flux_and_sd3_run_in_bf16_where_a_gpu_worker_would_use_fp16() -> None:
    import torch

    from gpu_worker.pipelines import family_dtype

    for family in ("flux", "sd3"):
        assert family_dtype(family, torch.float16, bf16_ok=True) == torch.bfloat16
        assert family_dtype(family, torch.float16, bf16_ok=False) == torch.float16  # pre-Ampere: fp16
        assert family_dtype(family, torch.float32, bf16_ok=True) == torch.float32  # CPU workers
    assert family_dtype("sdxl", torch.float16, bf16_ok=True) == torch.float16
