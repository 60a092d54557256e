"""Prompt weighting and long prompts through compel: `(word:1.3)`, `(word)1.3`, `word++`, `word--`,
and prompts past CLIP's 77 tokens.

A plain prompt that fits CLIP's 77 tokens goes to the pipeline as text, exactly as before; only
prompts that need it are encoded with compel (imported lazily: it takes seconds to import).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from gpu_worker.pipelines import LoadedModel
from studio.recipe import Recipe

# Weighting syntax: parentheses, a "+"/"-" run at the end of a word, .blend() / .and().
_WEIGHTING = re.compile(r"[()]|\w(\+\+?|--?)(?=\s|,|$)|\.(blend|and)\(")


# A1111's explicit weight, "(text:1.3)", which compel writes "(text)1.3".
_A1111_WEIGHT = re.compile(r"\(([^():]+):\s*([0-9]*\.?[0-9]+)\s*\)")


def to_compel_syntax(text: str) -> str:
    """Accept A1111's `(word:1.3)` as well as compel's own `(word)1.3`, `word++`, `word--`."""
    return _A1111_WEIGHT.sub(lambda m: f"({m[1].strip()}){m[2]}", text)


def needs_compel(model: LoadedModel, recipe: Recipe) -> bool:
    texts = (recipe.prompt, recipe.negative_prompt)
    if any(_WEIGHTING.search(text) for text in texts):
        return True
    tokenizer = model.text2img.tokenizer
    limit = int(tokenizer.model_max_length)
    return any(len(tokenizer(text).input_ids) > limit for text in texts if text)


def _compel(model: LoadedModel) -> Any:
    if model.compel is None:
        from compel import CompelForSD, CompelForSDXL

        wrapper = CompelForSDXL if model.ref.family == "sdxl" else CompelForSD
        model.compel = wrapper(model.text2img)
    return model.compel


def prompt_arguments(model: LoadedModel, recipe: Recipe) -> dict[str, Any]:
    """Pipeline keyword arguments for the prompt and negative prompt of a whole batch."""
    batch = recipe.batch
    if not needs_compel(model, recipe):
        return {"prompt": [recipe.prompt] * batch, "negative_prompt": [recipe.negative_prompt] * batch}
    with torch.no_grad():
        encoded = _compel(model)(
            to_compel_syntax(recipe.prompt), negative_prompt=to_compel_syntax(recipe.negative_prompt)
        )
    arguments = {
        "prompt_embeds": encoded.embeds.repeat(batch, 1, 1),
        "negative_prompt_embeds": encoded.negative_embeds.repeat(batch, 1, 1),
    }
    if model.ref.family == "sdxl":
        arguments["pooled_prompt_embeds"] = encoded.pooled_embeds.repeat(batch, 1)
        arguments["negative_pooled_prompt_embeds"] = encoded.negative_pooled_embeds.repeat(batch, 1)
    return arguments
