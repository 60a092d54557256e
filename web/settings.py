"""Sign-in with Discord: the OAuth2 application, from the environment only (the secret is never logged)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    """The bot's Discord application doubles as the web studio's OAuth2 client (DISCORD_*)."""

    model_config = SettingsConfigDict(env_prefix="DISCORD_", extra="ignore", frozen=True)

    client_id: str | None = None  # the application id (Developer Portal, OAuth2)
    client_secret: SecretStr | None = None
    api_base: str = "https://discord.com/api/v10"  # the token exchange and /users/@me
    oauth_url: str = "https://discord.com/oauth2/authorize"  # where browsers are sent to sign in

    @property
    def enabled(self) -> bool:
        return bool(self.client_id and self.client_secret and self.client_secret.get_secret_value())
