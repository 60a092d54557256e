"""What every request handler shares: the studio, the rate limiter, the background followers."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from api.followers import Followers
from api.ratelimit import RateLimiter
from api.webhooks import WebhookSender
from studio.app import Studio
from studio.settings import Settings


@dataclass
class ApiContext:
    settings: Settings
    studio: Studio
    limiter: RateLimiter
    webhooks: WebhookSender
    followers: Followers


def context(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.atelier
    return found
