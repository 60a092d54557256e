"""`atelier apikey create --user ID [--server ID] | list [--user ID] | revoke ID`: API keys without Discord.

The same use case as /apikey in Discord (studio.apikeys.ApiKeys): a key minted here acts as that
Discord user, in that server, exactly like one they made themselves. Only the database is
needed (no Redis). The token and webhook secret are printed once and never stored.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re

from studio.apikeys import ApiKeys
from studio.entities import ApiKey, Requester
from studio.errors import InvalidRecipe
from studio.settings import load_settings
from studio.store import Store

OPERATOR = Requester(id="cli:operator", name="operator", operator=True)
_SNOWFLAKE = re.compile(r"^[0-9]{1,20}$")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    apikey = sub.add_parser("apikey", help="REST API keys for a Discord user, without Discord")
    actions = apikey.add_subparsers(dest="apikey_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="mint a key (printed once)")
    create.add_argument("--user", required=True, help="the Discord user id it acts as (digits)")
    create.add_argument("--server", help="the Discord server id it acts in (its defaults and models)")
    create.add_argument("--name", help="a name to recognise the key by (default: cli)")
    create.add_argument("--display-name", help="the user's name in credits (default: as already known)")
    listing = actions.add_parser("list", help="live keys: everyone's, or one user's")
    listing.add_argument("--user", help="only this Discord user id's keys")
    revoke = actions.add_parser("revoke", help="revoke a key by id: it stops working at once")
    revoke.add_argument("id", help="the key's id (see `atelier apikey list`)")


def apikey(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


def user_id(text: str, what: str = "--user") -> str:
    """A Discord id (digits), as the bot records people: ``discord:<id>``."""
    bare = text.strip().removeprefix("discord:")
    if not _SNOWFLAKE.match(bare):
        raise InvalidRecipe(what.lstrip("-"), f"{what} is a Discord id (digits only), not `{text[:40]}`.")
    return bare


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    async with Store(settings.database) as store:
        keys = ApiKeys(settings, store)
        if args.apikey_command == "create":
            return await _create(keys, args)
        if args.apikey_command == "list":
            user = f"discord:{user_id(args.user)}" if args.user else None
            found = await keys.every_key(OPERATOR)
            shown = [key for key in found if user is None or key.owner_id == user]
            for key in shown:
                print(_line(key))
            if not shown:
                print("No live API keys.")
            return 0
        key = await keys.revoke(OPERATOR, args.id)
        print(f"Revoked `{key.id}` ({key.name}) of {key.owner_name} ({key.owner_id}); it stops working now.")
        return 0


async def _create(keys: ApiKeys, args: argparse.Namespace) -> int:
    owner = f"discord:{user_id(args.user)}"
    server = user_id(args.server, "--server") if args.server else None
    known = [key.owner_name for key in await keys.store.keys.live_of(owner)]
    name = args.display_name or (known[-1] if known else f"user {owner.removeprefix('discord:')}")
    minted = await keys.mint(Requester(id=owner, name=name, server=server), args.name or "cli")
    where = f"in server {server}" if server else "with no server (no server defaults or shared models)"
    print(
        f"API key `{minted.key.name}` (id {minted.key.id}) for {owner}, {where}.\n"
        "Copy it now: it is shown only this once.\n"
        f"key:            {minted.token}\n"
        f"webhook secret: {minted.webhook_secret}\n"
        "Send it as `Authorization: Bearer <key>`; revoke it with "
        f"`atelier apikey revoke {minted.key.id}`."
    )
    return 0


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "never"
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _line(key: ApiKey) -> str:
    return (
        f"{key.id}  {key.prefix}…  {key.name!r}  {key.owner_id} ({key.owner_name})  "
        f"server {key.server or '-'}  made {_when(key.created_at)}  last used {_when(key.last_used_at)}"
    )
