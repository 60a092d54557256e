"""Discord settings, from the environment only (the token is a secret and is never logged)."""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from studio.errors import ConfigError


class DiscordSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DISCORD_", extra="ignore", frozen=True)

    token: SecretStr | None = None
    # Comma-separated guild ids: commands are synced to these at once (handy while developing);
    # empty: synced globally (may take a while to show up everywhere).
    guild_ids: str = ""
    # Deployments at scale put an HTTP rate-limit proxy or a gateway proxy in front of Discord.
    api_base: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    guild_ready_timeout: float = Field(default=2.0, ge=0)
    # REST requests per second, evenly spaced (Discord allows 50; interactions are exempt). The
    # margin absorbs requests bunched by network or event-loop delays and discord.py's own
    # retries after a 429, which do not pass through the limiter.
    global_rate_limit: float = Field(default=35.0, gt=0, le=45)
    progress_edit_interval_s: float = Field(default=1.5, ge=0.2)  # Discord rate-limits edits

    @field_validator("guild_ids")
    @classmethod
    def _ids(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            if not part.isdigit():
                raise ValueError(f"not a guild id: {part!r}")
        return value

    @property
    def guilds(self) -> list[int]:
        return [int(p) for p in self.guild_ids.split(",") if p.strip()]


def load_discord_settings() -> DiscordSettings:
    try:
        return DiscordSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"Invalid setting DISCORD_{field.upper()}: {first['msg']}.") from None
