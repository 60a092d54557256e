"""A user using what the bot sent: clicking buttons, picking in select menus, submitting modals.

Each is refused (AssertionError/LookupError/ValueError) where Discord's client would not let
the user do it: a disabled or missing component, someone else's ephemeral message, a channel
they cannot see, values outside the menu's bounds, a modal that is not open for them.
"""

from __future__ import annotations

from typing import Any

from tests.fake_discord import rules
from tests.fake_discord.interactions import Interactions
from tests.fake_discord.options import Picker
from tests.fake_discord.state import InteractionRecord, MessageRecord
from tests.fake_discord.world import World

BUTTON, STRING_SELECT, TEXT_INPUT, USER_SELECT, ROLE_SELECT, MENTIONABLE_SELECT = 2, 3, 4, 5, 6, 7


class Components:
    def __init__(self, world: World, interactions: Interactions, picker: Picker) -> None:
        self.world = world
        self.interactions = interactions
        self.picker = picker

    def _interactable(self, message_id: int, user_id: int) -> MessageRecord:
        msg = self.world.messages.get(message_id)
        if msg is None or msg.deleted:
            raise LookupError(f"no message {message_id} (or it was deleted)")
        if msg.ephemeral and msg.interaction_id is not None:
            owner = self.world.interactions[msg.interaction_id].user_id
            if owner != user_id:
                raise AssertionError(f"message {message_id} is ephemeral: only user {owner} can see it")
        self.world.check_visible(user_id, msg.channel_id)
        return msg

    @staticmethod
    def _find(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
        for comp in rules._walk(components):
            if comp.get("custom_id") == custom_id:
                return comp
        return None

    async def click(self, message_id: int, custom_id: str, user: str | int = "alice") -> InteractionRecord:
        """A user clicks a button (INTERACTION_CREATE type 3, component_type 2)."""
        uid = self.world.user_id(user)
        msg = self._interactable(message_id, uid)
        comp = self._find(msg.components, custom_id)
        if comp is None:
            ids = [c.get("custom_id") for c in rules._walk(msg.components) if c.get("custom_id")]
            raise LookupError(f"message {message_id} has no component {custom_id!r}; it has {ids}")
        if comp.get("type") != BUTTON:
            raise ValueError(f"{custom_id!r} is a component of type {comp.get('type')}, not a button")
        if comp.get("disabled"):
            raise AssertionError(f"button {custom_id!r} is disabled: no user can click it")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": BUTTON}
        if "id" in comp:
            data["id"] = comp["id"]
        return await self.interactions.create(3, uid, msg.channel_id, data, name=custom_id, message=msg)

    async def select(
        self, message_id: int, custom_id: str, values: list[str], user: str | int = "alice"
    ) -> InteractionRecord:
        """A user picks ``values`` in a select menu (INTERACTION_CREATE type 3)."""
        uid = self.world.user_id(user)
        msg = self._interactable(message_id, uid)
        comp = self._find(msg.components, custom_id)
        if comp is None or comp.get("type") not in rules.SELECT_TYPES:
            raise LookupError(f"message {message_id} has no select menu {custom_id!r}")
        if comp.get("disabled"):
            raise AssertionError(f"select {custom_id!r} is disabled")
        low, high = comp.get("min_values", 1), comp.get("max_values", 1)
        if not low <= len(values) <= high:
            raise ValueError(f"select {custom_id!r} takes {low}..{high} values, got {len(values)}")
        resolved: dict[str, Any] = {}
        kind = comp["type"]
        guild = self.world.guild_of(msg.channel_id)
        out: list[str] = []
        for value in values:
            if kind == STRING_SELECT:
                allowed = [o["value"] for o in comp.get("options") or []]
                if value not in allowed:
                    raise ValueError(f"{value!r} is not an option of {custom_id!r}: {allowed}")
                out.append(value)
            elif kind == USER_SELECT:
                out.append(self.picker.user(value, resolved, guild))
            elif kind == ROLE_SELECT:
                out.append(self.picker.role(value, resolved, guild))
            elif kind == MENTIONABLE_SELECT:
                out.append(self.picker.mentionable(value, resolved, guild))
            else:
                out.append(self.picker.channel(value, resolved, msg.channel_id))
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": kind, "values": out}
        if resolved:
            data["resolved"] = resolved
        return await self.interactions.create(3, uid, msg.channel_id, data, name=custom_id, message=msg)

    async def submit_modal(
        self,
        custom_id: str,
        fields: dict[str, str | list[str]],
        user: str | int = "alice",
        message_id: int | None = None,
    ) -> InteractionRecord:
        """A user submits the modal the bot opened for them (INTERACTION_CREATE type 5)."""
        uid = self.world.user_id(user)
        session = self.world.open_modals.pop((uid, custom_id), None)
        if session is None:
            opened = [cid for (u, cid) in self.world.open_modals if u == uid]
            raise LookupError(f"no modal {custom_id!r} is open for {user!r}; open: {opened}")
        remaining = dict(fields)
        components: list[dict[str, Any]] = []

        def fill(comp: dict[str, Any]) -> dict[str, Any] | None:
            cid = comp.get("custom_id")
            kind = comp.get("type")
            if kind == TEXT_INPUT:
                value = remaining.pop(cid, None) if cid is not None else None
                text = "" if value is None else str(value)
                if comp.get("required", True) and not text:
                    raise ValueError(f"modal {custom_id!r}: field {cid!r} is required")
                if text and not comp.get("min_length", 0) <= len(text) <= comp.get("max_length", 4000):
                    raise ValueError(
                        f"modal {custom_id!r}: field {cid!r} length {len(text)} outside its bounds"
                    )
                return {"type": TEXT_INPUT, "custom_id": cid, "value": text}
            if kind in rules.SELECT_TYPES:
                picked = remaining.pop(cid, []) if cid is not None else []
                return {
                    "type": kind,
                    "custom_id": cid,
                    "values": list(picked) if isinstance(picked, list) else [picked],
                }
            return None

        for row in session.data.get("components") or []:
            if row.get("type") == 1:
                inner = [x for x in (fill(c) for c in row.get("components") or []) if x is not None]
                components.append({"type": 1, "components": inner})
            elif row.get("type") == 18:
                filled = fill(row.get("component") or {})
                if filled is not None:
                    components.append({"type": 18, "component": filled})
        if remaining:
            raise ValueError(f"modal {custom_id!r} has no fields {sorted(remaining)}")
        source = session.interaction
        mid = message_id if message_id is not None else source.message_id
        msg = self._interactable(mid, uid) if mid is not None else None
        data = {"custom_id": custom_id, "components": components}
        return await self.interactions.create(5, uid, source.channel_id, data, name=custom_id, message=msg)
