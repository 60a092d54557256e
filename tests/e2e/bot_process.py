"""The real bot, as a separate process, pointed at the fake Discord."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.fake_discord import FakeDiscord
from tests.integration.workers import ROOT, Deployment


@dataclass
class BotProcess:
    fake: FakeDiscord
    deployment: Deployment
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def env(self) -> dict[str, str]:
        env = self.deployment.env
        env.update(
            DISCORD_TOKEN="test-token",
            DISCORD_API_BASE=self.fake.api_base,
            DISCORD_GATEWAY_URL=self.fake.gateway_url,
            DISCORD_GUILD_IDS=",".join(str(g.id) for g in self.fake.bot_guilds()),
            DISCORD_GUILD_READY_TIMEOUT="0.05",
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.starts += 1
        with (self.log_dir / f"bot-{self.starts}.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot"], env=self.env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-4000:] for p in sorted(self.log_dir.glob("bot-*.log"))
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ATELIER_", "DISCORD_"))}
