"""Draft.from_options: the one mapping from a front end's options to a Draft."""

from __future__ import annotations

import argparse

from studio.recipe import Draft, LoraRef


def test_options_by_the_names_people_see() -> None:
    draft = Draft.from_options(
        {
            "negative": "blurry",
            "model": "tiny-sd15",
            "aspect": "3:2",
            "batch": 2,
            "seed": 7,
            "steps": 4,
            "guidance": 5.5,
            "sampler": "euler",
            "style": "ink",
            "loras": "mychar:0.8, ink:0.5",
            "strength": 0.4,
        }
    )
    assert draft == Draft(
        negative_prompt="blurry",
        model="tiny-sd15",
        aspect="3:2",
        batch=2,
        seed=7,
        steps=4,
        guidance=5.5,
        sampler="euler",
        style="ink",
        loras=(LoraRef(name="mychar", weight=0.8), LoraRef(name="ink", weight=0.5)),
        strength=0.4,
    )


def test_missing_and_none_options_are_not_said_and_other_names_are_left_out() -> None:
    said = {"prompt": "a cat", "project": "api", "private": True, "webhook_url": None, "seed": None}
    assert Draft.from_options(said) == Draft()
    assert Draft.from_options({"loras": ""}) == Draft()


def test_overrides_win() -> None:
    said = {"negative": "<@1> blurry", "lora": "mychar:0.8", "seed": 3}
    draft = Draft.from_options(said, negative="blurry", loras=said["lora"])
    assert draft == Draft(negative_prompt="blurry", seed=3, loras=(LoraRef(name="mychar", weight=0.8),))


def test_cli_arguments() -> None:
    args = argparse.Namespace(prompt="a cat", model="m", negative=None, strength=0.5, out="out", init=None)
    assert Draft.from_options(vars(args)) == Draft(model="m", strength=0.5)
