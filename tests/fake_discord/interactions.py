"""Interactions: INTERACTION_CREATE out, then the bot's callback, follow-ups and original response.

The 3 s window for the first callback, one callback per interaction, the callback types each
interaction type accepts and the 15 min token lifetime are enforced here; every call refused
on an interaction is kept in its record's ``rejected``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any, NoReturn

from aiohttp import web

from tests.fake_discord import rules
from tests.fake_discord.gateway import Gateway
from tests.fake_discord.messages import Messages
from tests.fake_discord.routing import (
    APP,
    TOKEN,
    Req,
    Route,
    Upload,
    json_response,
    no_content,
    redact,
    route,
)
from tests.fake_discord.rules import DiscordError, FormErrors
from tests.fake_discord.state import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    CallbackRecord,
    InteractionRecord,
    MessageRecord,
    RejectedCall,
)
from tests.fake_discord.world import OpenModal, World

# Interaction type -> callback types Discord accepts for it.
CALLBACK_TYPES: dict[int, frozenset[int]] = {
    1: frozenset({1}),
    2: frozenset({4, 5, 9, 12}),
    3: frozenset({4, 5, 6, 7, 9}),
    4: frozenset({8}),
    5: frozenset({4, 5, 6, 7}),
}


class Interactions:
    def __init__(
        self, world: World, gateway: Gateway, messages: Messages, describe: Callable[[], str]
    ) -> None:
        self.world = world
        self.gateway = gateway
        self.messages = messages
        self._describe = describe  # the fake's state, for a test's assertion message

    def routes(self) -> list[Route]:
        webhook_message = rf"/webhooks/{APP}/{TOKEN}/messages/(?P<message_id>@original|\d+)"
        # Interaction endpoints need no bot token and are exempt from the global rate limit.
        return [
            route(
                "POST",
                rf"/interactions/(?P<interaction_id>\d+)/{TOKEN}/callback",
                self._h_callback,
                auth=False,
                exempt=True,
            ),
            route(
                "POST", rf"/webhooks/{APP}/{TOKEN}", self._h_followup, auth=False, exempt=True, webhook=True
            ),
            route("GET", webhook_message, self._h_webhook_get, auth=False, exempt=True, webhook=True),
            route("PATCH", webhook_message, self._h_webhook_patch, auth=False, exempt=True, webhook=True),
            route("DELETE", webhook_message, self._h_webhook_delete, auth=False, exempt=True, webhook=True),
        ]

    async def create(
        self,
        itype: int,
        user_id: int,
        channel_id: int,
        data: dict[str, Any],
        *,
        name: str,
        message: MessageRecord | None = None,
    ) -> InteractionRecord:
        """A user's interaction reaches the bot (INTERACTION_CREATE); its 3 s window starts now."""
        world = self.world
        if not self.gateway.live_sessions:
            raise AssertionError(f"no bot is connected to the fake gateway\n  {self._describe()}")
        guild = world.check_visible(user_id, channel_id)
        if not guild.has_member(world.bot_user.id):
            raise AssertionError(f"the bot is not in {guild.name!r}: no interaction can reach it from there")
        gid = guild.id
        iid = world.ids.next()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        perms = world.member_permissions(user_id, gid)
        channel = world.channel_payload(channel_id) | {"permissions": str(perms)}
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(world.application_id),
            "type": itype,
            "token": token,
            "version": 1,
            "attachment_size_limit": world.attachment_size_limit,
            "data": data,
            "guild_id": str(gid),
            "guild": {"id": str(gid), "locale": "en-US", "features": []},
            "guild_locale": "en-US",
            "locale": "en-US",
            "channel_id": str(channel_id),
            "channel": channel,
            "member": guild.members[user_id].payload(permissions=perms),
            "app_permissions": str(world.bot_permissions(gid)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(gid)},
            "context": 0,
        }
        if message is not None:
            payload["message"] = self.messages.payload(message)
        rec = InteractionRecord(
            id=iid,
            token=token,
            type=itype,
            name=name,
            user_id=user_id,
            channel_id=channel_id,
            payload=payload,
            created_at=world.interaction_clock(),
            attachment_size_limit=world.attachment_size_limit,
            message_id=message.id if message is not None else None,
            _messages=world.messages,
            _clock=world.interaction_clock,
        )
        world.interactions[iid] = rec
        world.by_token[token] = rec
        loop = asyncio.get_running_loop()
        world.timers.append(loop.call_later(rules.INTERACTION_RESPONSE_WINDOW + 0.05, world.sweep))
        rec.created_at = world.interaction_clock()
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return rec

    def _reject(self, rec: InteractionRecord | None, r: Req, err: DiscordError) -> NoReturn:
        if rec is not None:
            rec.rejected.append(
                RejectedCall(
                    r.method,
                    redact(r.path),
                    err.status,
                    err.code,
                    err.message,
                    self.world.interaction_clock(),
                )
            )
            if not err.detail.startswith(f"interaction {rec.id}"):
                err.detail = (
                    f"interaction {rec.id} ({rec.name!r}): {err.detail}" if err.detail else f"{rec.name!r}"
                )
        raise err

    def _post(
        self,
        rec: InteractionRecord,
        payload: dict[str, Any],
        files: list[Upload],
        via: str,
        flags: int | None = None,
    ) -> MessageRecord:
        """A message the interaction posts (a response or a follow-up), sent by the app's webhook."""
        return self.messages.create(
            channel_id=rec.channel_id,
            payload=payload,
            files=files,
            via=via,
            interaction=rec,
            flags=flags,
            mtype=20 if rec.type == 2 else 0,
        )

    # --- the callback ---

    def _check_first_callback(self, rec: InteractionRecord, r: Req, ctype: Any, elapsed: float) -> None:
        if rec.response is not None:
            self._reject(
                rec,
                r,
                DiscordError(
                    400,
                    40060,
                    "Interaction has already been acknowledged.",
                    detail=f"second callback (type {ctype}); the first was type {rec.response.type}",
                ),
            )
        if elapsed > rules.INTERACTION_RESPONSE_WINDOW:
            self._reject(
                rec,
                r,
                DiscordError(
                    404,
                    10062,
                    "Unknown interaction",
                    detail=f"first callback {elapsed:.2f} s after dispatch (limit 3 s)",
                ),
            )
        if ctype not in CALLBACK_TYPES.get(rec.type, frozenset()) or (
            ctype in (6, 7) and rec.message_id is None
        ):
            errs = FormErrors()
            errs.add("type", "INTERACTION_CALLBACK_TYPE_INVALID", f"Callback type {ctype} is invalid here")
            invalid = DiscordError(
                400,
                50035,
                "Invalid Form Body",
                errors=errs.errors,
                detail=f"callback type {ctype} is not valid for interaction type {rec.type}",
            )
            self._reject(rec, r, invalid)

    def _act_on_callback(
        self, rec: InteractionRecord, r: Req, ctype: Any, data: dict[str, Any]
    ) -> MessageRecord | None:
        """Do what the callback asks; returns the message it posted or edited, if any."""
        if ctype == 4:
            rules.check_message(
                data, file_sizes=r.file_sizes(), size_limit=rec.attachment_size_limit, creating=True
            )
            return self._post(rec, data, r.files, "interaction callback 4")
        if ctype == 5:
            flags = FLAG_LOADING | ((data.get("flags") or 0) & FLAG_EPHEMERAL)
            return self._post(rec, {}, [], "interaction callback 5 (deferred)", flags=flags)
        if ctype in (6, 7):
            assert rec.message_id is not None
            message = self.world.get_message(None, rec.message_id, allow_ephemeral=True)
            if ctype == 7:
                self.messages.check_edit(message, data, r.files, rec.attachment_size_limit)
                self.messages.apply_edit(message, data, r.files)
            return message
        if ctype == 8:
            rec.choices = rules.check_choices(data)
        elif ctype == 9:
            rules.check_modal(data)
            rec.modal = data
            self.world.open_modals[(rec.user_id, data["custom_id"])] = OpenModal(rec, data)
        return None

    async def _h_callback(self, r: Req) -> web.StreamResponse:
        rec = self.world.interactions.get(r.int("interaction_id"))
        if rec is None or rec.token != r.params["token"]:
            raise DiscordError(404, 10062, "Unknown interaction", detail="no such interaction id/token")
        payload = r.body()
        ctype = payload.get("type")
        data = payload.get("data") or {}
        elapsed = self.world.interaction_clock() - rec.created_at
        self._check_first_callback(rec, r, ctype, elapsed)
        try:
            message = self._act_on_callback(rec, r, ctype, data)
        except DiscordError as err:
            self._reject(rec, r, err)
        attachments = message.attachments if message is not None and ctype in (4, 7) else []
        rec.response = CallbackRecord(
            type=int(ctype or 0),
            data=data,
            received_at=self.world.interaction_clock(),
            latency=elapsed,
            attachments=list(attachments),
        )
        rec.callbacks.append(rec.response)
        rec._responded.set()
        if message is not None:
            rec.original_message_id = message.id
            if ctype in (4, 5):
                await self.messages.dispatch("MESSAGE_CREATE", message)
            elif ctype == 7:
                await self.messages.dispatch("MESSAGE_UPDATE", message)
        if not r.flag("with_response"):
            return no_content()
        info: dict[str, Any] = {"id": str(rec.id), "type": rec.type}
        resource: dict[str, Any] = {"type": ctype}
        if message is not None and ctype in (4, 5, 7):
            info |= {
                "response_message_id": str(message.id),
                "response_message_loading": ctype == 5,
                "response_message_ephemeral": message.ephemeral,
            }
            resource["message"] = self.messages.payload(message)
        return json_response({"interaction": info, "resource": resource})

    # --- the webhook: follow-ups and the original response ---

    def _webhook_interaction(self, r: Req) -> InteractionRecord:
        rec = self.world.by_token.get(r.params["token"])
        if rec is None:
            raise DiscordError(401, 50027, "Invalid Webhook Token", detail="unknown interaction token")
        age = self.world.interaction_clock() - rec.created_at
        if age > rules.INTERACTION_TOKEN_LIFETIME:
            self._reject(
                rec,
                r,
                DiscordError(
                    401,
                    50027,
                    "Invalid Webhook Token",
                    detail=f"interaction token expired ({age:.0f} s old, lives 15 min)",
                ),
            )
        if rec.response is None:
            self._reject(
                rec,
                r,
                DiscordError(
                    404,
                    10015,
                    "Unknown Webhook",
                    detail="webhook call before the interaction was acknowledged",
                ),
            )
        return rec

    def _webhook_message(self, rec: InteractionRecord, r: Req) -> MessageRecord:
        raw = r.params["message_id"]
        if raw == "@original":
            if rec.original_message_id is None:
                self._reject(
                    rec, r, DiscordError(404, 10008, "Unknown Message", detail="there is no @original")
                )
            mid = rec.original_message_id
        else:
            mid = int(raw)
            if mid != rec.original_message_id and mid not in {m.id for m in rec.followups}:
                self._reject(
                    rec,
                    r,
                    DiscordError(404, 10008, "Unknown Message", detail="not a message of this interaction"),
                )
        msg = self.world.messages.get(mid)
        if msg is None or msg.deleted:
            self._reject(rec, r, DiscordError(404, 10008, "Unknown Message", detail="message deleted"))
        return msg

    async def _h_followup(self, r: Req) -> web.StreamResponse:
        rec = self._webhook_interaction(r)
        data = r.body()
        try:
            rules.check_message(
                data, file_sizes=r.file_sizes(), size_limit=rec.attachment_size_limit, creating=True
            )
        except DiscordError as err:
            self._reject(rec, r, err)
        messages = self.world.messages
        original = messages.get(rec.original_message_id) if rec.original_message_id is not None else None
        assert rec.response is not None
        if rec.response.type == 5 and original is not None and original.loading and not original.deleted:
            # The first follow-up after a deferred response completes the "thinking" message;
            # its ephemeral flag cannot differ from the defer's.
            wanted = bool((data.get("flags") or 0) & FLAG_EPHEMERAL)
            if wanted != original.ephemeral:
                self.world.record_violation(
                    f"POST {redact(r.path)}: interaction {rec.id} ({rec.name!r}): first follow-up after a "
                    f"{'ephemeral' if original.ephemeral else 'public'} defer asked ephemeral={wanted}; "
                    "Discord "
                    f"ignores that and the message is {'ephemeral' if original.ephemeral else 'public'}"
                )
            self.messages.apply_edit(original, data, r.files, kind="fill")
            msg = original
            await self.messages.dispatch("MESSAGE_UPDATE", msg)
        else:
            msg = self._post(rec, data, r.files, "webhook follow-up")
            await self.messages.dispatch("MESSAGE_CREATE", msg)
        rec.followups.append(msg)
        return json_response(self.messages.payload(msg))

    async def _h_webhook_get(self, r: Req) -> web.StreamResponse:
        rec = self._webhook_interaction(r)
        return json_response(self.messages.payload(self._webhook_message(rec, r)))

    async def _h_webhook_patch(self, r: Req) -> web.StreamResponse:
        rec = self._webhook_interaction(r)
        msg = self._webhook_message(rec, r)
        data = r.body()
        try:
            self.messages.check_edit(msg, data, r.files, rec.attachment_size_limit)
        except DiscordError as err:
            self._reject(rec, r, err)
        self.messages.apply_edit(msg, data, r.files)
        await self.messages.dispatch("MESSAGE_UPDATE", msg)
        return json_response(self.messages.payload(msg))

    async def _h_webhook_delete(self, r: Req) -> web.StreamResponse:
        rec = self._webhook_interaction(r)
        msg = self._webhook_message(rec, r)
        msg.deleted = True
        await self.messages.dispatch("MESSAGE_DELETE", msg)
        return no_content()
