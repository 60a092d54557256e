"""``--chaos N`` (0-100): how much the images of one batch differ from each other.

Without chaos the images of a batch differ only by their seeds (``seed``, ``seed + 1``, ...).
With chaos each image also gets, drawn from a generator seeded by that image's own seed:

- its own guidance: the recipe's guidance times ``2 ** (N/100 * u)`` with ``u`` uniform in
  [-1, 1], so at ``--chaos 100`` anywhere from half to twice it (kept within 0..30);
- a shuffled prompt, with probability ``N/100``: the comma-separated fragments after the first
  (the subject stays first) in a new order, which changes what the text encoder stresses;
- for SD 1.5 and SDXL started from noise (not img2img or inpaint), a broad shift of its
  starting noise ("offset noise"): each latent channel moved by a constant and a coarse 2x2
  field, both ``N/100 * NOISE_OFFSET`` standard deviations, which moves the image's overall
  light, colour and layout (the fine noise stays the seed's own).

The draw depends on nothing but the image's seed and N, so ``Recipe.for_image(i)`` (batch 1, seed
``seed + i``) gets exactly the jitter image ``i`` had in its batch: a chaotic image is reproduced
by its own recipe. ``--chaos 0`` changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from studio.recipe import MAX_CHAOS, MAX_GUIDANCE, Recipe

GUIDANCE_OCTAVES = 1.0  # at chaos 100, guidance ranges over 2**-1 .. 2**1 times the recipe's
NOISE_OFFSET = 1.0  # at chaos 100, the starting noise's broad shift, in standard deviations


@dataclass(frozen=True)
class Jitter:
    """What chaos gives one image: its recipe (guidance, prompt) and its starting noise's shift."""

    recipe: Recipe
    offset: float  # the shift's size in standard deviations (0: none)
    offset_seed: int  # seeds the shift's own generator (the fine noise stays the image's seed's)


def jitter(recipe: Recipe) -> Jitter:
    """Chaos for a single-image recipe (``batch`` 1, as ``Recipe.for_image`` gives)."""
    if not recipe.chaos:
        return Jitter(recipe, 0.0, 0)
    amount = recipe.chaos / MAX_CHAOS
    draw = random.Random(f"atelier-chaos:{recipe.seed}")  # str seeds are hashed stably (sha512)
    factor = 2 ** (amount * GUIDANCE_OCTAVES * draw.uniform(-1.0, 1.0))
    guidance = round(min(MAX_GUIDANCE, recipe.guidance * factor), 3)
    shuffle = draw.random() < amount
    offset_seed = draw.getrandbits(63)
    prompt = shuffled(recipe.prompt, draw) if shuffle else recipe.prompt
    one = recipe.model_copy(update={"guidance": guidance, "prompt": prompt, "batch": 1})
    return Jitter(one, amount * NOISE_OFFSET, offset_seed)


def jittered(recipe: Recipe) -> Recipe:
    """The single-image recipe with the guidance and prompt order chaos gives it."""
    return jitter(recipe).recipe


def shuffled(prompt: str, draw: random.Random) -> str:
    """The prompt's comma-separated fragments after the first, in an order ``draw`` picks."""
    first, *rest = [part.strip() for part in prompt.split(",")]
    if len(rest) < 2:
        return prompt
    draw.shuffle(rest)
    return ", ".join([first, *rest])


def for_image(recipe: Recipe, index: int) -> Jitter:
    """What image ``index`` of a chaotic batch is made from."""
    return jitter(recipe.for_image(index))
