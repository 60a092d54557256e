"""Content policy: each server's prompt blocklist (words and regexes), checked on every prompt.

Server admins (Manage Server) add words or regexes; every generation's prompt and negative
prompt, from any front end, is checked against its server's list before anything starts. A
regex comes from a person, so it is held to a shape the matcher cannot spend long on: short,
no nested or stacked unbounded quantifiers, no backreferences or lookarounds; matching also
runs under a timeout (the ``regex`` engine), and a pattern that times out counts as a match,
so a slow pattern can never wave a prompt through.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import regex  # type: ignore[import-untyped]

from studio.errors import NotYours, StudioError

if TYPE_CHECKING:
    from studio.entities import Requester
    from studio.store.policy import PolicyRows

RuleKind = Literal["word", "regex"]
MAX_WORD = 64
MAX_REGEX = 100
MAX_RULES = 200  # per server: every prompt is checked against all of them
MATCH_TIMEOUT_S = 0.05  # per pattern and prompt; prompts are a few hundred characters
MAX_UNBOUNDED = 2  # `*`, `+` or `{n,}` in one pattern: more makes matching polynomially slow

_QUANTIFIER = re.compile(r"[*+?]|\{\d*,?\d*\}")


class PolicyError(StudioError):
    """A rule an admin tried to add that cannot be used, or a rule that is not there."""


class PromptBlocked(StudioError):
    """A prompt hit the server's blocklist. The sentence never repeats the term it matched."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(
            f"Your {field} uses a word or phrase this server does not allow; please rephrase it and "
            "try again."
        )


@dataclass(frozen=True)
class PolicyRule:
    kind: RuleKind
    pattern: str
    added_by: str = ""


def checked_rule(kind: str, text: str) -> PolicyRule:
    """The rule an admin asked for, or PolicyError saying in one sentence what is wrong with it."""
    pattern = text.strip()
    if kind == "word":
        if not pattern or len(pattern) > MAX_WORD or any(c in pattern for c in "\n\r\t"):
            raise PolicyError(f"A blocked word or phrase is 1 to {MAX_WORD} characters on one line.")
        return PolicyRule("word", pattern.lower())
    if kind == "regex":
        check_regex(pattern)
        return PolicyRule("regex", pattern)
    raise PolicyError("A rule is either a `word` (whole word, any case) or a `regex`.")


def check_regex(pattern: str) -> None:
    """Refuse a pattern that is too long, does not compile, or could backtrack for long."""
    if not pattern or len(pattern) > MAX_REGEX or "\n" in pattern:
        raise PolicyError(f"A blocked regex is 1 to {MAX_REGEX} characters on one line.")
    try:
        re.compile(pattern)
    except re.error as error:
        raise PolicyError(f"That regex does not compile ({error.msg}).") from None
    if re.search(r"\\\d|\\g|\(\?P=|\(\?<?[=!]", pattern):
        raise PolicyError("Blocked regexes cannot use backreferences or lookarounds.")
    unbounded = 0
    for problem in _quantifier_problems(pattern):
        if problem == "nested":
            raise PolicyError(
                "That regex repeats a group that itself repeats or has alternatives (like `(a+)+` or "
                "`(a|ab)*`), which can take very long to check; write it without that repeat."
            )
        unbounded += 1
    if unbounded > MAX_UNBOUNDED:
        raise PolicyError(f"A blocked regex may use at most {MAX_UNBOUNDED} open-ended repeats (`*`, `+`).")


def _quantifier_problems(pattern: str) -> list[str]:
    """One entry per open-ended quantifier ("unbounded"), and "nested" for a repeated group that
    already holds a repeat or an alternation (the shapes of catastrophic backtracking)."""
    found: list[str] = []
    stack: list[bool] = []  # per open group: does it hold a repeat or a `|`?
    i = 0
    while i < len(pattern):
        char = pattern[i]
        group_repeats = False
        if char == "\\":
            i += 2  # an escaped atom
        elif char == "[":
            i = _class_end(pattern, i)
        elif char == "(":
            stack.append(False)
            i += 1
            continue
        elif char == "|":
            if stack:
                stack[-1] = True
            i += 1
            continue
        elif char == ")":
            group_repeats = stack.pop() if stack else False
            if group_repeats and stack:
                stack[-1] = True  # a group holding a repeat: its enclosing group holds one too
            i += 1
        else:
            i += 1
        quantifier = _QUANTIFIER.match(pattern, i)
        if quantifier is None:
            continue
        repeat = quantifier.group()
        if repeat != "?":
            if group_repeats:
                found.append("nested")
            if stack:
                stack[-1] = True
        if repeat in ("*", "+") or (repeat.startswith("{") and repeat.endswith(",}")):
            found.append("unbounded")
        i = quantifier.end()
        if pattern[i : i + 1] in ("?", "+"):  # lazy or possessive
            i += 1
    return found


def _class_end(pattern: str, start: int) -> int:
    """The index just past the character class opening at ``start``."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":  # a literal `]` first in the class
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def blocked_by(rules: list[PolicyRule], text: str) -> PolicyRule | None:
    """The first rule ``text`` breaks: a word matches whole words in any case; a regex anywhere
    (case-insensitive). A regex that runs out of time counts as a match."""
    if not text:
        return None
    words = tuple(rule.pattern for rule in rules if rule.kind == "word")
    if words:
        found = _words_pattern(words).search(text.lower())
        if found is not None:
            return next(rule for rule in rules if rule.kind == "word" and rule.pattern == found.group(1))
    for rule in rules:
        if rule.kind == "word":
            continue
        try:
            if regex.search(rule.pattern, text, flags=regex.IGNORECASE | regex.V0, timeout=MATCH_TIMEOUT_S):
                return rule
        except TimeoutError:
            return rule
        except regex.error:  # stored before a stricter check: it can match nothing
            continue
    return None


@functools.lru_cache(maxsize=256)
def _words_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """One pass for all of a server's words: whole words, longest first (a phrase before its word)."""
    ordered = sorted(words, key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(word) for word in ordered) + r")(?!\w)")


class Policy:
    """The use cases: check a prompt against its server's list; admins edit the list."""

    def __init__(self, rows: PolicyRows) -> None:
        self.rows = rows

    async def check_prompt(self, server: str | None, prompt: str, negative: str | None = None) -> None:
        """Raise PromptBlocked when the prompt or the negative prompt breaks the server's list."""
        if server is None:
            return
        rules = await self.rows.rules(server)
        if not rules:
            return
        if blocked_by(rules, prompt):
            raise PromptBlocked("prompt")
        if negative and blocked_by(rules, negative):
            raise PromptBlocked("negative prompt")

    async def rules(self, requester: Requester) -> list[PolicyRule]:
        return await self.rows.rules(self._server_of_admin(requester))

    async def add(self, requester: Requester, kind: str, text: str) -> PolicyRule:
        server = self._server_of_admin(requester)
        rule = checked_rule(kind, text)
        if len(await self.rows.rules(server)) >= MAX_RULES:
            raise PolicyError(f"This server already blocks {MAX_RULES} words and regexes; remove some first.")
        await self.rows.add(server, rule, requester.id)
        return rule

    async def remove(self, requester: Requester, kind: str, text: str) -> bool:
        server = self._server_of_admin(requester)
        pattern = text.strip().lower() if kind == "word" else text.strip()
        return await self.rows.remove(server, kind, pattern)

    @staticmethod
    def _server_of_admin(requester: Requester) -> str:
        if not (requester.admin and requester.server):
            raise NotYours("Only server admins (Manage Server) can change the server's prompt blocklist.")
        return requester.server
