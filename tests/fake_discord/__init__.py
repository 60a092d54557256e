"""A local fake Discord that enforces Discord's rules, for testing the real discord.py bot offline.

Usage (same process or the bot in another one)::

    fake = FakeDiscord()                     # token "test-token", 10 MiB upload limit
    await fake.start()                       # 127.0.0.1, a free port
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    ...start the bot with guild_ready_timeout=0.05...
    await fake.wait_connected()
    record = await fake.slash("imagine", {"prompt": "a cat"})
    await record.wait_response()             # first accepted callback, within 3 s
    await record.wait_followups(1)
    fake.assert_clean()                      # no Discord rule was broken
    await fake.stop()

Modules: ``server`` (FakeDiscord: the app, the REST plumbing, the test-facing names), ``world``
(every record, the clock, the violations), one module per resource (``guilds``, ``channels`` and
``messages``, ``reactions``, ``polls``, ``threads``, ``interactions``, ``commands`` with ``options``,
``components``, ``cdn``, ``gateway``, ``oauth`` for "Sign in with Discord"), ``limits`` (rate
limits), ``holds``, ``routing`` (the REST vocabulary), ``rules`` (Discord's limits and error
answers, in one place) and ``state`` (records). ``tests/e2e/test_fake_discord.py`` shows it driving
a real bot.
"""

from tests.fake_discord.rules import DiscordError
from tests.fake_discord.server import FakeDiscord
from tests.fake_discord.state import (
    AttachmentRecord,
    CallbackRecord,
    GuildRecord,
    InteractionRecord,
    MessageRecord,
    RateLimitInjection,
    RejectedCall,
    RequestLog,
    ThreadRecord,
)

__all__ = [
    "AttachmentRecord",
    "CallbackRecord",
    "DiscordError",
    "FakeDiscord",
    "GuildRecord",
    "InteractionRecord",
    "MessageRecord",
    "RateLimitInjection",
    "RejectedCall",
    "RequestLog",
    "ThreadRecord",
]
