"""Prompt permutations: ``a {red, blue} fox`` is two prompts, as in Midjourney.

Each ``{...}`` group lists options separated by commas; the text is expanded into one prompt
per combination, groups multiplying left to right (``{a, b} {c, d}`` is ``a c``, ``a d``,
``b c``, ``b d``). Groups may nest (``{a, {b, c} d}``) and may sit in flags too
(``--ar {1:1, 3:2}``). ``\\,`` is a literal comma inside an option, ``\\{`` and ``\\}`` literal
braces. The number of prompts is counted before any is built, so a runaway text such as
``{a,b}`` written twenty times costs nothing to refuse.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from studio.errors import InvalidRecipe, NotFound, StudioError
from studio.recipe import Draft, parse_prompt

if TYPE_CHECKING:
    from studio.entities import Generation, Requester
    from studio.generations import GenerationPlan, Generations


@dataclass(frozen=True)
class Group:
    """``{...}``: its options, each a sequence of plain text and nested groups."""

    options: tuple[tuple[str | Group, ...], ...]


def has_permutations(text: str) -> bool:
    """Whether the text has an unescaped brace (a group, or a stray brace to complain about)."""
    return any(ch in "{}" and (i == 0 or text[i - 1] != "\\") for i, ch in enumerate(text))


def count(text: str) -> int:
    """How many prompts ``text`` expands into (1 without groups). Raises InvalidRecipe."""
    return _count(_parse(text))


def expand(text: str, cap: int) -> list[str]:
    """Every prompt ``text`` stands for, in order; more than ``cap`` of them is refused in one
    sentence before any is built. Raises InvalidRecipe (unbalanced braces, an empty option)."""
    pieces = _parse(text)
    total = _count(pieces)
    if total > cap:
        raise InvalidRecipe(
            "prompt",
            f"Those `{{...}}` options make {total} prompts; the limit is {cap} at once. "
            "Use fewer options or split them over several commands.",
        )
    return [" ".join(prompt.split()) for prompt in _expand(pieces)]


def _parse(text: str) -> tuple[str | Group, ...]:
    pieces, end = _sequence(text, 0, top=True)
    assert end == len(text)
    return pieces


def _sequence(text: str, i: int, *, top: bool) -> tuple[tuple[str | Group, ...], int]:
    """Pieces from ``i`` up to the end (top level) or to the ``,`` / ``}`` that ends an option."""
    pieces: list[str | Group] = []
    plain: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{},":
            plain.append(text[i + 1])
            i += 2
            continue
        if ch == "{":
            if plain:
                pieces.append("".join(plain))
                plain = []
            group, i = _group(text, i + 1)
            pieces.append(group)
            continue
        if ch == "}" and top:
            raise InvalidRecipe(
                "prompt", "The prompt has a `}` without its `{`: permutations are written `{red, blue}`."
            )
        if not top and ch in ",}":
            break
        plain.append(ch)
        i += 1
    if plain:
        pieces.append("".join(plain))
    return tuple(pieces), i


def _group(text: str, i: int) -> tuple[Group, int]:
    """The group whose ``{`` is just before ``i``; returns it and the index after its ``}``."""
    options: list[tuple[str | Group, ...]] = []
    while True:
        option, i = _sequence(text, i, top=False)
        if i >= len(text):
            raise InvalidRecipe(
                "prompt", "The prompt has a `{` without its `}`: permutations are written `{red, blue}`."
            )
        if not "".join(p for p in option if isinstance(p, str)).strip() and not any(
            isinstance(p, Group) for p in option
        ):
            raise InvalidRecipe(
                "prompt", "A `{...}` permutation has an empty option: write `{red, blue}`, each one filled."
            )
        options.append(option)
        if text[i] == "}":
            return Group(tuple(options)), i + 1
        i += 1  # past the comma


def _count(pieces: tuple[str | Group, ...]) -> int:
    return math.prod(sum(_count(option) for option in p.options) for p in pieces if isinstance(p, Group))


def _expand(pieces: tuple[str | Group, ...]) -> list[str]:
    results = [""]
    for piece in pieces:
        if isinstance(piece, str):
            results = [r + piece for r in results]
        else:
            alternatives = [a.strip() for option in piece.options for a in _expand(option)]
            results = [r + a for r in results for a in alternatives]
    return results


class ConfirmPermutations(StudioError):
    """More prompts than ``permutation_confirm_above``: the front end asks before queueing them."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"Those `{{...}}` options make {count} prompts, so {count} jobs: confirm to queue them all "
            '(in the API, send `"confirm": true`).'
        )
        self.field = "confirm"
        self.count = count


async def prepare_set(
    generations: Generations,
    requester: Requester,
    text: str,
    options: Draft | None = None,
    *,
    confirmed: bool = False,
    **prepare: Any,
) -> tuple[GenerationPlan, ...]:
    """One plan per prompt ``text`` expands into (one plan when it has no ``{...}``).

    Everything is checked before anything is queued: the braces, the cap (``max_permutations``),
    the confirmation (``permutation_confirm_above``, unless ``confirmed``), every prompt as
    ``Generations.prepare`` checks it (``prepare`` holds its keyword arguments), and capacity for
    the whole set. A set is one request, as an API batch is: it is taken when the person has room
    for one more request under ``max_jobs_per_user``, and its jobs may then take them past it
    (each insert is held to ``max_jobs_per_user - 1 + len(set)``); if not all can be queued, none
    is. Without a seed of their own the prompts share one, so they differ only by their options.
    """
    settings = generations.settings
    texts = expand(text, settings.max_permutations) if has_permutations(text) else [text]
    if len(texts) == 1:
        return (await generations.prepare(requester, texts[0], options, **prepare),)
    if len(texts) > settings.permutation_confirm_above and not confirmed:
        raise ConfirmPermutations(len(texts))
    if (options is None or options.seed is None) and all(parse_prompt(t).seed is None for t in texts):
        options = (options or Draft()).merged(Draft(seed=secrets.randbits(32)))
    limit = settings.max_jobs_per_user - 1 + len(texts)
    plans = []
    for number, prompt in enumerate(texts, start=1):
        try:
            plan = await generations.prepare(requester, prompt, options, **prepare)
        except InvalidRecipe as error:
            raise InvalidRecipe(error.field, f"Prompt {number} (`{prompt[:80]}`): {error}") from None
        plans.append(dataclasses.replace(plan, limit=limit))
    await generations.check_capacity(requester, len(plans), limit)
    return tuple(plans)


async def start_set(
    generations: Generations,
    plans: tuple[GenerationPlan, ...],
    generation_id: str | None = None,
    *,
    on_started: Callable[[Generation], Awaitable[None]] | None = None,
    **start: Any,
) -> list[Generation]:
    """Start a prepared set in order (``start`` holds ``Generations.start``'s keyword arguments).

    ``generation_id`` (a recorded command's) goes to the last plan and the others get ids derived
    from it, so a command resumed after a restart sees its set complete once that id exists, and
    skips the ones it already started (``on_started`` hears of the ones this call starts). If
    one fails, the ones this call started are cancelled.
    """
    ids = [member_id(generation_id, n, len(plans)) if generation_id else None for n in range(len(plans))]
    started: list[Generation] = []  # by this call
    every: list[Generation] = []
    try:
        for plan, gid in zip(plans, ids, strict=True):
            if gid is not None and (found := await _existing(generations, gid)) is not None:
                every.append(found)  # started before a restart (its delivery is already recorded)
                continue
            generation = await generations.start(plan, generation_id=gid, **start)
            started.append(generation)
            every.append(generation)
            if on_started is not None:
                await on_started(generation)
    except BaseException:
        if started:
            await generations._withdraw(plans[0].requester, started)
        raise
    return every


def member_id(generation_id: str, number: int, size: int) -> str:
    """The id of plan ``number`` of a set of ``size`` started for ``generation_id`` (the last's)."""
    if number == size - 1:
        return generation_id
    return hashlib.sha256(f"{generation_id}:{number}".encode()).hexdigest()[:32]


async def _existing(generations: Generations, generation_id: str) -> Generation | None:
    try:
        return await generations.store.get_generation(generation_id)
    except NotFound:
        return None
