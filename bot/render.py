"""How generations look in Discord: status lines, progress bars, the recipe embed, file fitting."""

from __future__ import annotations

import io
import math
import re
import time

import discord
from PIL import Image

from studio.entities import Generation, Post
from studio.recipe import Recipe

KEYCAPS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣")
STAR = "⭐"
NO_PINGS = discord.AllowedMentions.none()
_MENTION = re.compile(r"<@[!&]?\d+>|<#\d+>|@everyone|@here")
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's per-file limit without boosts
# Per-file limits Discord has used (bytes): free, legacy free, and boosted tiers.
UPLOAD_TIERS = (100 * 1024 * 1024, 50 * 1024 * 1024, 25 * 1024 * 1024, 10 * 1024 * 1024, 8 * 1024 * 1024)
_TOLD_LIMIT = re.compile(r"limit(?: of| is)?:? ?(\d{3,})")


def strip_mentions(text: str) -> str:
    """User and role mentions mean nothing to a diffusion model; drop them from prompts."""
    return " ".join(_MENTION.sub(" ", text).split())


def quote(text: str, limit: int = 300) -> str:
    """User text shown inline: markdown and mentions made inert, length capped."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return discord.utils.escape_mentions(discord.utils.escape_markdown(shown))


def credit(owner_id: str) -> str:
    """A mention of the creator (inert: nothing is sent with pings allowed), or their CLI name."""
    user = owner_id.removeprefix("discord:")
    return f"<@{user}>" if user.isdigit() else quote(user, 40)


def code(text: str) -> str:
    """``text`` as inline code, shown and copied verbatim (backticks inside kept)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def jump_link(guild_id: int | None, channel_id: str, message_id: str) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def where_shown(posts: list[Post], index: int, guild_id: int | None) -> str:
    """A link to the message that best shows image ``index``: its own post, else its batch's result."""
    shown = next((p for p in posts if p.kind == "image" and p.image_index == index), None)
    shown = shown or next((p for p in posts if p.kind == "status"), None)
    return jump_link(guild_id, shown.channel_id, shown.message_id) if shown else "(not posted)"


def thread_name(prompt: str) -> str:
    name = " ".join(prompt.split())[:90].strip() or "Atelier project"
    return name


def bar(step: int, total: int, width: int = 16) -> str:
    filled = int(width * step / total) if total else 0
    return "█" * filled + "░" * (width - filled)


def eta_words(seconds: float | None) -> str:
    """A queue ETA (studio.eta) for people: " · ready in about 40 s" / "… 3 min" / "… 1.5 h";
    "" with no estimate (nothing rather than a wrong number)."""
    if seconds is None:
        return ""
    if seconds < 60:
        about = f"{max(5, 5 * math.ceil(seconds / 5))} s"
    elif seconds < 3600:
        about = f"{round(seconds / 60)} min"
    else:
        about = f"{round(seconds / 3600, 1):g} h"
    return f" · ready in about {about}"


def queued(generation: Generation, position: int | None, eta: float | None = None) -> str:
    ahead = "you are next" if not position else f"{position} job{'s' if position != 1 else ''} ahead"
    return f"⏳ Queued — {ahead}{eta_words(eta)}. {summary(generation.recipe)}"


def lane_line(lane: str) -> str:
    """/status: the person's lane (studio.fairness)."""
    said = " (runs when no fast job waits; `/settings set lane:fast` to change)" if lane == "relax" else ""
    return f"**Your lane:** {lane}{said}"


def place_in_line(status: str, position: int | None, eta: float | None = None) -> str:
    """/status: a queued job's place in line, from its queue's true order (running jobs count),
    and its ETA when there is one (as on its status message)."""
    if status != "queued" or position is None:
        return ""
    place = " · next in line" if position == 0 else f" · {position} job{'s' if position != 1 else ''} ahead"
    return place + eta_words(eta)


def progress(generation: Generation, step: int, total: int, started: float, attempt: int) -> str:
    elapsed = time.monotonic() - started
    eta = elapsed / step * (total - step) if step else 0.0
    retry = f" (attempt {attempt})" if attempt > 1 else ""
    return (
        f"🎨 Generating{retry} `{bar(step, total)}` {step}/{total} steps · ETA {eta:.0f}s\n"
        f"{summary(generation.recipe)}"
    )


def summary(recipe: Recipe) -> str:
    return f"{recipe.batch}× {recipe.width}×{recipe.height} · {recipe.model}"


def result_embed(generation: Generation, owner_mention: str) -> discord.Embed:
    r = generation.recipe
    embed = discord.Embed(title="Result", description=quote(r.prompt, 3900), colour=0x6D5BD0)
    if r.negative_prompt:
        embed.add_field(name="Negative", value=quote(r.negative_prompt, 1000), inline=False)
    embed.add_field(name="Model", value=r.model)
    embed.add_field(
        name="Seed", value=str(r.seed) if r.batch == 1 else f"{r.seed} … {r.seed_for(r.batch - 1)}"
    )
    embed.add_field(name="Steps", value=str(r.steps))
    embed.add_field(name="Guidance", value=f"{r.guidance:g}")
    embed.add_field(name="Size", value=f"{r.width}×{r.height}")
    if r.strength is not None:
        embed.add_field(name="Strength", value=f"{r.strength:g}")
    if r.style:
        embed.add_field(name="Style", value=r.style)
    if r.loras:
        embed.add_field(name="LoRAs", value=", ".join(f"{lo.name}:{lo.weight:g}" for lo in r.loras))
    if r.control is not None:  # ControlNet: its map is posted beside the result
        c = r.control
        embed.add_field(name="Control", value=f"{c.mode} {c.strength:g} (steps {c.start:g}–{c.end:g})")
    took = (generation.finished_at or 0) - generation.created_at
    embed.set_footer(
        text=f"{took:.1f}s · worker {generation.worker_seconds or 0:.1f}s · id {generation.id[:12]}"
    )
    embed.add_field(name="By", value=owner_mention)
    return embed


def fit_image(png: bytes, limit: int, name: str) -> tuple[bytes, str]:
    """The image as-is when it fits ``limit`` bytes, else re-encoded (JPEG) and, if need be, downscaled.

    Pixel work: call it in a thread, never on the event loop.
    """
    if len(png) <= limit:
        return png, f"{name}.png"
    image = Image.open(io.BytesIO(png)).convert("RGB")
    scale = 1.0
    while True:
        for quality in (92, 85, 75):
            out = io.BytesIO()
            frame = (
                image
                if scale == 1.0
                else image.resize(
                    (max(1, int(image.width * scale)), max(1, int(image.height * scale))),
                    Image.Resampling.LANCZOS,
                )
            )
            frame.save(out, format="JPEG", quality=quality, optimize=True)
            if out.tell() <= limit:
                return out.getvalue(), f"{name}.jpg"
        scale *= 0.75
        if scale < 0.05:
            raise ValueError("image cannot be made small enough")


def limit_after_413(sent: int, told: str | None = None) -> int:
    """The limit to fit to after Discord refused a file of ``sent`` bytes (HTTP 413).

    The limit Discord states, when its answer names one; else the largest limit Discord uses
    below what failed (a file refused at 12 MiB is fitted to 10 MiB, not to 6); else half.
    """
    if told:
        found = _TOLD_LIMIT.search(told)
        if found and 0 < int(found[1]) < sent:
            return int(found[1])
    below = next((tier for tier in UPLOAD_TIERS if tier < sent), None)
    return below if below is not None else max(1024, sent // 2)
