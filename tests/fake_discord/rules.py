"""Discord's limits, checked the way Discord checks them, with the errors Discord answers.

Every check raises :class:`DiscordError`; the server turns it into Discord's JSON error and records
a violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.fake_discord.state import FLAG_COMPONENTS_V2

DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
INTERACTION_RESPONSE_WINDOW = 3.0
INTERACTION_TOKEN_LIFETIME = 15 * 60.0
GLOBAL_RATE_LIMIT_PER_SECOND = 50
INVALID_REQUESTS_PER_10_MIN = 10_000

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TITLE = 256
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_FIELDS = 25
MAX_EMBED_FIELD_NAME = 256
MAX_EMBED_FIELD_VALUE = 1024
MAX_EMBED_FOOTER = 2048
MAX_EMBED_AUTHOR = 256
MAX_EMBED_TOTAL = 6000
MAX_FILES = 10
MAX_ACTION_ROWS = 5
MAX_BUTTONS_PER_ROW = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_URL = 512  # a link button's url (Discord's component reference)
MAX_SELECT_OPTIONS = 25
MAX_COMPONENTS_V2 = 40
THREAD_ARCHIVE_DURATIONS = frozenset({60, 1440, 4320, 10080})
MAX_THREAD_NAME = 100
MAX_AUTOCOMPLETE_CHOICES = 25

# Per-route buckets (opt-in: ``fake.enforce_rate_limits()``). Discord publishes no numbers: apps
# must read X-RateLimit-* headers. A bucket is shared by the routes naming it and counted per
# top-level resource ("major parameter": channel_id, or webhook_id + token). Figures:
# - message sends: the long-standing 5 per 5 s per channel (a thread is a channel of its own);
# - thread creation (from a message or not): a bucket of its own, separate from message sends,
#   with no published figure; assumed here, and the bench names the figure it ran with;
# - webhooks (interaction follow-ups and @original edits): 5 per 2 s per webhook + token, i.e.
#   per interaction; interaction callbacks have no per-route bucket (one answer per interaction).
# The global 50 requests/s (interaction endpoints exempt) then answers a global 429.
RATE_LIMIT_BUCKETS: dict[str, tuple[int, float]] = {
    "message-create": (5, 5.0),
    "thread-create": (10, 1.0),
    "webhook": (5, 2.0),
}

SELECT_TYPES = frozenset({3, 5, 6, 7, 8})
ERR_INVALID_FORM_BODY = 50035


class DiscordError(Exception):
    """An error the fake answers with, the way Discord would (status + JSON body)."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        detail: str = "",
        violation: bool = True,
    ) -> None:
        super().__init__(f"{status} {code} {message}" + (f" ({detail})" if detail else ""))
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.detail = detail
        self.violation = violation

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            data["errors"] = self.errors
        return data


class FormErrors:
    """Collects field errors into Discord's nested ``errors`` shape (``{"a": {"0": {"_errors": [...]}}}``)."""

    def __init__(self) -> None:
        self.errors: dict[str, Any] = {}
        self.flat: list[str] = []

    def add(self, path: str, code: str, message: str) -> None:
        node = self.errors
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
        self.flat.append(f"{path}: {message}")

    def max_len(self, path: str, value: Any, limit: int) -> None:
        if isinstance(value, str | list) and len(value) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def length_between(self, path: str, value: Any, low: int, high: int) -> None:
        if not isinstance(value, str) or not low <= len(value) <= high:
            self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    def raise_if_any(self, status: int = 400, code: int = ERR_INVALID_FORM_BODY) -> None:
        if self.flat:
            raise DiscordError(
                status, code, "Invalid Form Body", errors=self.errors, detail="; ".join(self.flat)
            )


# --- messages ---


def _embed_chars(embed: dict[str, Any]) -> int:
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    for f in embed.get("fields") or []:
        total += len(f.get("name") or "") + len(f.get("value") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    return total


_URL = re.compile(r"^(https?://\S+|attachment://\S+)$")
_WEB_URL = re.compile(r"^https?://[^\s/]+\S*$")  # what a link button may open


def check_embeds(embeds: Any, errs: FormErrors) -> None:
    if not isinstance(embeds, list):
        errs.add("embeds", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType.")
        return
    errs.max_len("embeds", embeds, MAX_EMBEDS)
    total = 0
    for i, embed in enumerate(embeds):
        p = f"embeds.{i}"
        if not isinstance(embed, dict):
            errs.add(p, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType.")
            continue
        errs.max_len(f"{p}.title", embed.get("title"), MAX_EMBED_TITLE)
        errs.max_len(f"{p}.description", embed.get("description"), MAX_EMBED_DESCRIPTION)
        fields = embed.get("fields") or []
        errs.max_len(f"{p}.fields", fields, MAX_EMBED_FIELDS)
        for j, f in enumerate(fields):
            name, value = f.get("name"), f.get("value")
            if not name:
                errs.add(f"{p}.fields.{j}.name", "BASE_TYPE_REQUIRED", "This field is required")
            if not value:
                errs.add(f"{p}.fields.{j}.value", "BASE_TYPE_REQUIRED", "This field is required")
            errs.max_len(f"{p}.fields.{j}.name", name, MAX_EMBED_FIELD_NAME)
            errs.max_len(f"{p}.fields.{j}.value", value, MAX_EMBED_FIELD_VALUE)
        errs.max_len(f"{p}.footer.text", (embed.get("footer") or {}).get("text"), MAX_EMBED_FOOTER)
        errs.max_len(f"{p}.author.name", (embed.get("author") or {}).get("name"), MAX_EMBED_AUTHOR)
        for key in ("url", "image.url", "thumbnail.url", "author.url", "author.icon_url", "footer.icon_url"):
            node: Any = embed
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None and not (isinstance(node, str) and _URL.match(node)):
                errs.add(f"{p}.{key}", "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        color = embed.get("color")
        if color is not None and not (isinstance(color, int) and 0 <= color <= 0xFFFFFF):
            errs.add(f"{p}.color", "NUMBER_TYPE_MAX", "int value should be <= 16777215 and >= 0.")
        total += _embed_chars(embed)
    if total > MAX_EMBED_TOTAL:
        errs.add("embeds", "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")


def _check_custom_id(path: str, comp: dict[str, Any], errs: FormErrors, seen: set[str]) -> None:
    cid = comp.get("custom_id")
    if cid is None:
        errs.add(f"{path}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
        return
    errs.length_between(f"{path}.custom_id", cid, 1, MAX_CUSTOM_ID)
    if cid in seen:
        errs.add(
            f"{path}.custom_id", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"
        )
    seen.add(cid)


def _check_button(path: str, comp: dict[str, Any], errs: FormErrors, seen: set[str]) -> None:
    style = comp.get("style")
    if style not in (1, 2, 3, 4, 5, 6):
        errs.add(
            f"{path}.style", "BASE_TYPE_CHOICES", f"Value must be one of {{1, 2, 3, 4, 5, 6}}. ({style})"
        )
    url = comp.get("url")
    if style == 5:  # a link: a web address, and no custom id (clicking it sends no interaction)
        if not url:
            errs.add(f"{path}.url", "BASE_TYPE_REQUIRED", "This field is required")
        elif not (isinstance(url, str) and _WEB_URL.match(url)):
            errs.add(f"{path}.url", "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        errs.max_len(f"{path}.url", url, MAX_BUTTON_URL)
        if comp.get("custom_id") is not None:
            errs.add(
                f"{path}.custom_id", "BUTTON_COMPONENT_CUSTOM_ID_URL", "A link button cannot have a custom id"
            )
    elif style == 6:
        if not comp.get("sku_id"):
            errs.add(f"{path}.sku_id", "BASE_TYPE_REQUIRED", "This field is required")
    else:
        _check_custom_id(path, comp, errs, seen)
    if style != 5 and url is not None:
        errs.add(f"{path}.url", "BUTTON_COMPONENT_CUSTOM_ID_URL", "Only a link button can have a url")
    errs.max_len(f"{path}.label", comp.get("label"), 80)
    if style != 6 and not comp.get("label") and not comp.get("emoji"):
        errs.add(path, "BUTTON_COMPONENT_LABEL_OR_EMOJI", "A button must have a label or an emoji")


def _check_select(path: str, comp: dict[str, Any], errs: FormErrors, seen: set[str]) -> None:
    _check_custom_id(path, comp, errs, seen)
    errs.max_len(f"{path}.placeholder", comp.get("placeholder"), 150)
    low, high = comp.get("min_values", 1), comp.get("max_values", 1)
    if not (isinstance(low, int) and 0 <= low <= 25):
        errs.add(f"{path}.min_values", "NUMBER_TYPE_MAX", "int value should be <= 25 and >= 0.")
    if not (isinstance(high, int) and 1 <= high <= 25):
        errs.add(f"{path}.max_values", "NUMBER_TYPE_MAX", "int value should be <= 25 and >= 1.")
    if comp.get("type") == 3:
        options = comp.get("options") or []
        if not 1 <= len(options) <= MAX_SELECT_OPTIONS:
            errs.add(
                f"{path}.options",
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {MAX_SELECT_OPTIONS} in length.",
            )
        values: set[str] = set()
        for k, opt in enumerate(options):
            errs.length_between(f"{path}.options.{k}.label", opt.get("label"), 1, 100)
            errs.length_between(f"{path}.options.{k}.value", opt.get("value"), 1, 100)
            errs.max_len(f"{path}.options.{k}.description", opt.get("description"), 100)
            if opt.get("value") in values:
                errs.add(
                    f"{path}.options.{k}.value", "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED", "Duplicate value"
                )
            values.add(opt.get("value"))
        if isinstance(high, int) and high > len(options) and options:
            errs.add(f"{path}.max_values", "NUMBER_TYPE_MAX", f"int value should be <= {len(options)}.")


def _check_action_row(
    path: str, row: dict[str, Any], errs: FormErrors, seen: set[str], *, modal: bool
) -> None:
    children = row.get("components") or []
    if not children:
        errs.add(f"{path}.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
        return
    kinds = [c.get("type") for c in children]
    if any(k in SELECT_TYPES or k == 4 for k in kinds) and len(children) > 1:
        errs.add(
            f"{path}.components",
            "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
            "The specified component exceeds the maximum width",
        )
    errs.max_len(f"{path}.components", children, MAX_BUTTONS_PER_ROW)
    for j, comp in enumerate(children):
        cpath = f"{path}.components.{j}"
        kind = comp.get("type")
        if kind == 2 and not modal:
            _check_button(cpath, comp, errs, seen)
        elif kind in SELECT_TYPES:
            _check_select(cpath, comp, errs, seen)
        elif kind == 4 and modal:
            check_text_input(cpath, comp, errs, seen, needs_label=True)
        else:
            errs.add(f"{cpath}.type", "UNION_TYPE_CHOICES", f"Component type {kind} is not allowed here")


def _walk(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for comp in components:
        yield comp
        yield from _walk(comp.get("components") or [])
        if isinstance(comp.get("accessory"), dict):
            yield from _walk([comp["accessory"]])
        if isinstance(comp.get("component"), dict):
            yield from _walk([comp["component"]])


def check_components(components: Any, flags: int, errs: FormErrors) -> None:
    if not isinstance(components, list):
        errs.add("components", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType.")
        return
    seen: set[str] = set()
    if flags & FLAG_COMPONENTS_V2:
        if sum(1 for _ in _walk(components)) > MAX_COMPONENTS_V2:
            errs.add(
                "components",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_COMPONENTS_V2} or fewer components in total.",
            )
        for comp in _walk(components):
            if comp.get("type") == 1:
                _check_action_row("components", comp, errs, seen, modal=False)
        return
    errs.max_len("components", components, MAX_ACTION_ROWS)
    for i, row in enumerate(components):
        if row.get("type") != 1:
            errs.add(f"components.{i}.type", "UNION_TYPE_CHOICES", "Top-level components must be action rows")
            continue
        _check_action_row(f"components.{i}", row, errs, seen, modal=False)


def check_allowed_mentions(am: Any, errs: FormErrors) -> None:
    if am is None:
        return
    if not isinstance(am, dict):
        errs.add("allowed_mentions", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType.")
        return
    parse = am.get("parse") or []
    for k, v in enumerate(parse):
        if v not in ("everyone", "users", "roles"):
            errs.add(
                f"allowed_mentions.parse.{k}",
                "BASE_TYPE_CHOICES",
                "Value must be one of ('everyone', 'users', 'roles').",
            )
    for kind in ("users", "roles"):
        if kind in parse and am.get(kind):
            errs.add(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )
        errs.max_len(f"allowed_mentions.{kind}", am.get(kind), 100)


def check_message(
    payload: dict[str, Any],
    *,
    file_sizes: list[int],
    size_limit: int,
    kept_attachments: int = 0,
    creating: bool,
) -> None:
    """Validate a message body (create or edit). Raises 413/40005 for big files, 400 otherwise."""
    for size in file_sizes:
        if size > size_limit:
            raise DiscordError(
                413, 40005, "Request entity too large", detail=f"file of {size} bytes > limit {size_limit}"
            )
    errs = FormErrors()
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        errs.add("content", "BASE_TYPE_STRING", "Must be a string.")
    errs.max_len("content", content, MAX_CONTENT)
    if payload.get("embeds") is not None:
        check_embeds(payload["embeds"], errs)
    flags = payload.get("flags") or 0
    if payload.get("components") is not None:
        check_components(payload["components"], flags, errs)
    if flags & FLAG_COMPONENTS_V2 and (content or payload.get("embeds")):
        errs.add(
            "content",
            "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
            "content/embeds cannot be used with IS_COMPONENTS_V2",
        )
    if len(file_sizes) + kept_attachments > MAX_FILES:
        errs.add("attachments", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_FILES} or fewer in length.")
    errs.max_len("sticker_ids", payload.get("sticker_ids"), 3)
    check_allowed_mentions(payload.get("allowed_mentions"), errs)
    errs.raise_if_any()
    if creating and not (
        content
        or payload.get("embeds")
        or file_sizes
        or kept_attachments
        or payload.get("components")
        or payload.get("sticker_ids")
        or payload.get("poll")
    ):
        raise DiscordError(400, 50006, "Cannot send an empty message")


def pings_anyone(allowed_mentions: dict[str, Any] | None, *, is_reply: bool = False) -> bool:
    """True when a message sent with these ``allowed_mentions`` could ping someone.

    Absent ``allowed_mentions`` means Discord's default: everything in the content pings.
    """
    if allowed_mentions is None:
        return True
    parse = allowed_mentions.get("parse") or []
    if any(p in ("everyone", "users", "roles") for p in parse):
        return True
    if allowed_mentions.get("users") or allowed_mentions.get("roles"):
        return True
    return bool(is_reply and allowed_mentions.get("replied_user", True))


# --- threads ---


def check_thread(payload: dict[str, Any], *, creating: bool) -> None:
    errs = FormErrors()
    name = payload.get("name")
    if creating or "name" in payload:
        if name is None:
            errs.add("name", "BASE_TYPE_REQUIRED", "This field is required")
        else:
            errs.length_between("name", name, 1, MAX_THREAD_NAME)
    duration = payload.get("auto_archive_duration")
    if duration is not None and duration not in THREAD_ARCHIVE_DURATIONS:
        errs.add(
            "auto_archive_duration",
            "BASE_TYPE_CHOICES",
            f"Value must be one of {sorted(THREAD_ARCHIVE_DURATIONS)}.",
        )
    slow = payload.get("rate_limit_per_user")
    if slow is not None and not (isinstance(slow, int) and 0 <= slow <= 21600):
        errs.add("rate_limit_per_user", "NUMBER_TYPE_MAX", "int value should be <= 21600 and >= 0.")
    errs.raise_if_any()


# --- modals, autocomplete ---


def check_text_input(
    path: str, comp: dict[str, Any], errs: FormErrors, seen: set[str], *, needs_label: bool
) -> None:
    _check_custom_id(path, comp, errs, seen)
    if comp.get("style") not in (1, 2):
        errs.add(f"{path}.style", "BASE_TYPE_CHOICES", "Value must be one of {1, 2}.")
    if needs_label:
        errs.length_between(f"{path}.label", comp.get("label"), 1, 45)
    for key, low, high in (("min_length", 0, 4000), ("max_length", 1, 4000)):
        value = comp.get(key)
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            errs.add(f"{path}.{key}", "NUMBER_TYPE_MAX", f"int value should be <= {high} and >= {low}.")
    errs.max_len(f"{path}.value", comp.get("value"), 4000)
    errs.max_len(f"{path}.placeholder", comp.get("placeholder"), 100)


def check_modal(data: dict[str, Any]) -> None:
    errs = FormErrors()
    errs.length_between("data.custom_id", data.get("custom_id"), 1, MAX_CUSTOM_ID)
    errs.length_between("data.title", data.get("title"), 1, 45)
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        errs.add("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    seen: set[str] = set()
    for i, comp in enumerate(components):
        path = f"data.components.{i}"
        kind = comp.get("type")
        if kind == 1:
            _check_action_row(path, comp, errs, seen, modal=True)
        elif kind == 18:
            errs.length_between(f"{path}.label", comp.get("label"), 1, 45)
            errs.max_len(f"{path}.description", comp.get("description"), 100)
            inner = comp.get("component") or {}
            if inner.get("type") == 4:
                check_text_input(f"{path}.component", inner, errs, seen, needs_label=False)
            elif inner.get("type") in SELECT_TYPES:
                _check_select(f"{path}.component", inner, errs, seen)
            elif inner.get("type") != 19:
                errs.add(
                    f"{path}.component.type", "UNION_TYPE_CHOICES", "Component type not allowed in a label"
                )
        elif kind != 10:
            errs.add(f"{path}.type", "UNION_TYPE_CHOICES", f"Component type {kind} is not allowed in a modal")
    errs.raise_if_any()


def check_choices(data: dict[str, Any]) -> list[dict[str, Any]]:
    errs = FormErrors()
    choices = data.get("choices")
    if not isinstance(choices, list):
        errs.add("data.choices", "BASE_TYPE_REQUIRED", "This field is required")
        errs.raise_if_any()
        return []
    errs.max_len("data.choices", choices, MAX_AUTOCOMPLETE_CHOICES)
    for i, choice in enumerate(choices):
        errs.length_between(f"data.choices.{i}.name", choice.get("name"), 1, 100)
        value = choice.get("value")
        if isinstance(value, str):
            errs.max_len(f"data.choices.{i}.value", value, 100)
        elif not isinstance(value, int | float) or isinstance(value, bool):
            errs.add(
                f"data.choices.{i}.value", "BASE_TYPE_REQUIRED", "Choice value must be a string or number"
            )
    errs.raise_if_any()
    return choices


# --- commands ---

_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


def _check_command_name(path: str, name: Any, errs: FormErrors) -> None:
    if not isinstance(name, str) or not _COMMAND_NAME.match(name) or name != name.lower():
        errs.add(path, "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid ({name!r})")


def _check_options(path: str, options: list[dict[str, Any]], errs: FormErrors, depth: int) -> None:
    errs.max_len(path, options, 25)
    optional_seen = False
    names: set[str] = set()
    for i, opt in enumerate(options):
        p = f"{path}.{i}"
        _check_command_name(f"{p}.name", opt.get("name"), errs)
        if opt.get("name") in names:
            errs.add(
                f"{p}.name", "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique"
            )
        names.add(str(opt.get("name")))
        errs.length_between(f"{p}.description", opt.get("description"), 1, 100)
        kind = opt.get("type")
        if kind in (1, 2):
            if depth >= (2 if kind == 1 else 1):
                errs.add(
                    f"{p}.type", "APPLICATION_COMMAND_OPTION_TYPE_INVALID", "Sub-command nesting is too deep"
                )
            _check_options(f"{p}.options", opt.get("options") or [], errs, depth + 1)
            continue
        if opt.get("required"):
            if optional_seen:
                errs.add(
                    f"{p}.required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        choices = opt.get("choices") or []
        errs.max_len(f"{p}.choices", choices, 25)
        for k, choice in enumerate(choices):
            errs.length_between(f"{p}.choices.{k}.name", choice.get("name"), 1, 100)
            if isinstance(choice.get("value"), str):
                errs.max_len(f"{p}.choices.{k}.value", choice.get("value"), 100)
        if choices and opt.get("autocomplete"):
            errs.add(
                f"{p}.autocomplete",
                "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                "Autocomplete and choices are exclusive",
            )


def check_commands(commands: Any) -> None:
    errs = FormErrors()
    if not isinstance(commands, list):
        errs.add("_root", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType.")
        errs.raise_if_any()
        return
    counts = {1: 0, 2: 0, 3: 0}
    names: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        kind = cmd.get("type", 1)
        counts[kind] = counts.get(kind, 0) + 1
        key = (kind, cmd.get("name"))
        if key in names:
            errs.add(
                f"{i}.name",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Duplicate command name {cmd.get('name')!r}",
            )
        names.add(key)
        if kind == 1:
            _check_command_name(f"{i}.name", cmd.get("name"), errs)
            errs.length_between(f"{i}.description", cmd.get("description"), 1, 100)
            _check_options(f"{i}.options", cmd.get("options") or [], errs, 0)
        else:
            errs.length_between(f"{i}.name", cmd.get("name"), 1, 32)
    if counts.get(1, 0) > 100:
        errs.add("_root", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer chat input commands.")
    for kind in (2, 3):
        if counts.get(kind, 0) > 15:
            errs.add(
                "_root", "BASE_TYPE_MAX_LENGTH", "Must be 15 or fewer context menu commands of one type."
            )
    errs.raise_if_any()
