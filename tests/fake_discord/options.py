"""What a user picks in a command's options or a select menu, as Discord sends it to the bot.

``Picker`` fills an interaction's ``resolved`` map (users, members, roles, channels,
attachments), and ``Picker.build`` checks the values a test gives against the synced command
(types, bounds, choices, required) the way Discord's client does before sending anything.
"""

from __future__ import annotations

from typing import Any

from tests.fake_discord.cdn import Cdn
from tests.fake_discord.state import GuildRecord
from tests.fake_discord.world import World

OPTION_SUBCOMMAND, OPTION_SUBCOMMAND_GROUP = 1, 2
OPTION_STRING, OPTION_INTEGER, OPTION_BOOLEAN, OPTION_USER = 3, 4, 5, 6
OPTION_CHANNEL, OPTION_ROLE, OPTION_MENTIONABLE, OPTION_NUMBER, OPTION_ATTACHMENT = 7, 8, 9, 10, 11

# A test's upload for an attachment option: (bytes, filename, content_type[, description]).
UploadSpec = tuple[bytes, str, str]


class Picker:
    def __init__(self, world: World, cdn: Cdn) -> None:
        self.world = world
        self.cdn = cdn

    def user(self, value: Any, resolved: dict[str, Any], guild: GuildRecord | None = None) -> str:
        world = self.world
        guild = guild or world.guild
        uid = world.user_id(value if not (isinstance(value, str) and value.isdigit()) else int(value))
        resolved.setdefault("users", {})[str(uid)] = world.user_records[uid].payload()
        if uid in guild.members:
            resolved.setdefault("members", {})[str(uid)] = guild.members[uid].payload(
                with_user=False, permissions=world.member_permissions(uid, guild.id)
            )
        return str(uid)

    def role(self, value: Any, resolved: dict[str, Any], guild: GuildRecord | None = None) -> str:
        roles = (guild or self.world.guild).roles
        role_id: int | None = None
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            role_id = int(value)
        else:
            role_id = next((r.id for r in roles.values() if r.name == value), None)
        if role_id is None or role_id not in roles:
            raise ValueError(f"unknown role {value!r}")
        resolved.setdefault("roles", {})[str(role_id)] = roles[role_id].payload()
        return str(role_id)

    def mentionable(self, value: Any, resolved: dict[str, Any], guild: GuildRecord) -> str:
        """A user if ``value`` names one, else a role."""
        try:
            return self.user(value, resolved, guild)
        except KeyError:
            return self.role(value, resolved, guild)

    def channel(self, value: Any, resolved: dict[str, Any], from_channel: int) -> str:
        """A channel picked while in ``from_channel``: Discord only offers channels of that guild."""
        cid = int(value)
        if self.world.known_channel(cid).id != self.world.guild_of(from_channel).id:
            raise ValueError(f"channel {cid} is not in the guild of channel {from_channel}")
        resolved.setdefault("channels", {})[str(cid)] = self.world.channel_payload(cid) | {
            "permissions": str(self.world.bot_permissions(self.world.guild_of(cid).id))
        }
        return str(cid)

    def attachment(self, name: str, upload: Any, resolved: dict[str, Any], channel_id: int) -> str:
        if not (isinstance(upload, tuple) and len(upload) in (3, 4)):
            raise ValueError(
                f"attachment option {name!r} needs (bytes, filename, content_type[, description])"
            )
        data, filename, content_type = upload[:3]
        # The fourth element is the alt text.
        att = self.cdn.new_attachment(data, filename, content_type, upload[3] if len(upload) == 4 else None)
        self.cdn.store(channel_id, [att])
        resolved.setdefault("attachments", {})[str(att.id)] = self.cdn.attachment_payload(att, channel_id) | {
            "ephemeral": True
        }
        return str(att.id)

    def _convert(
        self,
        opt: dict[str, Any],
        value: Any,
        resolved: dict[str, Any],
        attachments: dict[str, UploadSpec],
        channel_id: int,
    ) -> Any:
        kind = opt["type"]
        name = opt["name"]
        if kind == OPTION_STRING:
            value = str(value)
            if not opt.get("min_length", 0) <= len(value) <= opt.get("max_length", 6000):
                raise ValueError(f"option {name!r}: length {len(value)} outside the command's bounds")
        elif kind == OPTION_INTEGER:
            if isinstance(value, bool) or int(value) != value:
                raise ValueError(f"option {name!r} must be an integer, got {value!r}")
            value = int(value)
        elif kind == OPTION_NUMBER:
            value = float(value)
        elif kind == OPTION_BOOLEAN:
            if not isinstance(value, bool):
                raise ValueError(f"option {name!r} must be a bool, got {value!r}")
        elif kind == OPTION_USER:
            value = self.user(value, resolved, self.world.guild_of(channel_id))
        elif kind == OPTION_ROLE:
            value = self.role(value, resolved, self.world.guild_of(channel_id))
        elif kind == OPTION_MENTIONABLE:
            value = self.mentionable(value, resolved, self.world.guild_of(channel_id))
        elif kind == OPTION_CHANNEL:
            value = self.channel(value, resolved, channel_id)
        elif kind == OPTION_ATTACHMENT:
            upload = attachments.get(name)
            value = self.attachment(name, value if upload is None else upload, resolved, channel_id)
        if kind in (OPTION_INTEGER, OPTION_NUMBER) and (
            ("min_value" in opt and value < opt["min_value"])
            or ("max_value" in opt and value > opt["max_value"])
        ):
            raise ValueError(f"option {name!r}: {value} outside the command's bounds")
        choices = opt.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(
                f"option {name!r}: {value!r} is not one of the choices {[c['value'] for c in choices]}"
            )
        return value

    def build(
        self,
        cmd: dict[str, Any],
        options: dict[str, Any],
        subcommand: str | None,
        attachments: dict[str, UploadSpec],
        channel_id: int,
        focused: str | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The ``options`` tree (nested under ``subcommand``, "sub" or "group sub") and ``resolved``."""
        groups = (OPTION_SUBCOMMAND, OPTION_SUBCOMMAND_GROUP)
        defs: list[dict[str, Any]] = cmd.get("options") or []
        path: list[dict[str, Any]] = []
        for part in (subcommand or "").split():
            found = next((o for o in defs if o["name"] == part and o["type"] in groups), None)
            if found is None:
                raise LookupError(f"/{cmd['name']} has no subcommand (group) {part!r}")
            path.append(found)
            defs = found.get("options") or []
        if any(o["type"] in groups for o in defs):
            raise ValueError(f"/{cmd['name']} needs a subcommand: {[o['name'] for o in defs]}")
        resolved: dict[str, Any] = {}
        leaf: list[dict[str, Any]] = []
        given = dict(options)
        for name in [n for n, _ in attachments.items() if n not in given]:
            given[name] = None
        by_name = {o["name"]: o for o in defs}
        for name, value in given.items():
            opt = by_name.get(name)
            if opt is None:
                raise ValueError(f"/{cmd['name']} has no option {name!r}; it has {sorted(by_name)}")
            if name == focused:
                leaf.append({"name": name, "type": opt["type"], "value": str(value), "focused": True})
                continue
            value = self._convert(opt, value, resolved, attachments, channel_id)
            leaf.append({"name": name, "type": opt["type"], "value": value})
        if focused is None:
            missing = [o["name"] for o in defs if o.get("required") and o["name"] not in given]
            if missing:
                raise ValueError(f"/{cmd['name']}: required options missing: {missing}")
        elif focused not in given:
            raise ValueError(f"focused option {focused!r} must be in options")
        tree = leaf
        for sub in reversed(path):
            tree = [{"name": sub["name"], "type": sub["type"], "options": tree}]
        return tree, resolved
