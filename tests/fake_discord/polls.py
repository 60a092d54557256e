"""Polls: made with a message, voted on by members, ended by Discord's clock or by their author.

Discord's rules (developers/resources/poll): 1 to 10 answers; question text 1-300 characters,
answer text 1-55; ``duration`` in hours, 1 to 768 (32 days; 24 when absent). A poll message
cannot be edited into another poll. Votes reach the bot as MESSAGE_POLL_VOTE_ADD/REMOVE only
with the GUILD_MESSAGE_POLLS intent (1 << 24). Only a poll's author may end it early
(POST /channels/{c}/polls/{m}/expire); a poll that ended takes no votes (520001 Poll expired).
When a poll ends, Discord counts the votes, marks the results ``is_finalized`` (a MESSAGE_UPDATE
of the poll's message) and posts a poll-result system message (type 46) replying to it, whose
``poll_result`` embed holds the question, the victor (absent on a tie or with no votes) and the
total — both events need the GUILD_MESSAGES intent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fake_discord.gateway import Gateway
from tests.fake_discord.routing import CHANNEL, MESSAGE, Req, Route, json_response, route
from tests.fake_discord.rules import DiscordError, FormErrors
from tests.fake_discord.state import READ_MESSAGE_HISTORY, MessageRecord, iso
from tests.fake_discord.world import World

if TYPE_CHECKING:
    from tests.fake_discord.messages import Messages

MAX_ANSWERS = 10
MAX_QUESTION = 300
MAX_ANSWER = 55
MIN_HOURS, MAX_HOURS, DEFAULT_HOURS = 1, 768, 24
MESSAGE_POLL_RESULT = 46

ERR_POLL_EXPIRED = 520001
ERR_CANNOT_EDIT_POLL = 520003
ERR_NOT_A_POLL = 520006


@dataclass(eq=False)
class PollRecord:
    question: str
    answers: list[tuple[int, str]]  # (answer_id, text); ids 1..n in order
    expiry: float  # wall seconds
    allow_multiselect: bool = False
    layout_type: int = 1
    votes: dict[int, list[int]] = field(default_factory=dict)  # answer_id -> user ids, in order
    finalized: bool = False

    def counts(self) -> dict[int, int]:
        return {answer_id: len(self.votes.get(answer_id, [])) for answer_id, _ in self.answers}


def check_poll(poll: Any) -> None:
    """A poll create request, as Discord validates it (400 Invalid Form Body otherwise)."""
    errs = FormErrors()
    if not isinstance(poll, dict):
        errs.add("poll", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
        errs.raise_if_any()
    question = (poll.get("question") or {}).get("text")
    if not isinstance(question, str) or not question:
        errs.add("poll.question.text", "BASE_TYPE_REQUIRED", "This field is required")
    else:
        errs.length_between("poll.question.text", question, 1, MAX_QUESTION)
    answers = poll.get("answers")
    if not isinstance(answers, list) or not 1 <= len(answers) <= MAX_ANSWERS:
        errs.add("poll.answers", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_ANSWERS} in length.")
    else:
        for n, answer in enumerate(answers):
            text = ((answer or {}).get("poll_media") or {}).get("text")
            if not isinstance(text, str) or not text:
                errs.add(f"poll.answers.{n}.poll_media.text", "BASE_TYPE_REQUIRED", "This field is required")
            else:
                errs.length_between(f"poll.answers.{n}.poll_media.text", text, 1, MAX_ANSWER)
    duration = poll.get("duration", DEFAULT_HOURS)
    if not isinstance(duration, int | float) or not MIN_HOURS <= duration <= MAX_HOURS:
        errs.add(
            "poll.duration",
            "NUMBER_TYPE_MAX"
            if isinstance(duration, int | float) and duration > MAX_HOURS
            else "NUMBER_TYPE_MIN",
            f"Must be between {MIN_HOURS} and {MAX_HOURS} hours.",
        )
    errs.raise_if_any()


def new_poll(poll: dict[str, Any], created_at: float) -> PollRecord:
    answers = [(n + 1, a["poll_media"]["text"]) for n, a in enumerate(poll["answers"])]
    return PollRecord(
        question=poll["question"]["text"],
        answers=answers,
        expiry=created_at + float(poll.get("duration", DEFAULT_HOURS)) * 3600,
        allow_multiselect=bool(poll.get("allow_multiselect", False)),
        layout_type=int(poll.get("layout_type") or 1),
    )


def poll_payload(poll: PollRecord, viewer: int) -> dict[str, Any]:
    counts = poll.counts()
    return {
        "question": {"text": poll.question},
        "answers": [{"answer_id": a, "poll_media": {"text": text}} for a, text in poll.answers],
        "expiry": iso(poll.expiry),
        "allow_multiselect": poll.allow_multiselect,
        "layout_type": poll.layout_type,
        "results": {
            "is_finalized": poll.finalized,
            "answer_counts": [
                {"id": a, "count": counts[a], "me_voted": viewer in poll.votes.get(a, [])}
                for a, _ in poll.answers
                if counts[a]
            ],
        },
    }


def check_poll_edit(msg: MessageRecord, payload: dict[str, Any]) -> None:
    if "poll" in payload and payload["poll"] is not None:
        raise DiscordError(400, ERR_CANNOT_EDIT_POLL, "Cannot edit a poll message")


class Polls:
    """Voting and ending: the test's side (``vote``, ``unvote``, ``end_poll``) and the bot's (expire)."""

    def __init__(self, world: World, gateway: Gateway, messages: Messages) -> None:
        self.world = world
        self.gateway = gateway
        self.messages = messages

    def routes(self) -> list[Route]:
        polls = rf"/channels/{CHANNEL}/polls/{MESSAGE}"
        return [
            route("POST", polls + "/expire", self._h_expire),
            route("GET", polls + r"/answers/(?P<answer_id>\d+)", self._h_voters),
        ]

    def _poll_of(self, msg: MessageRecord) -> PollRecord:
        poll = msg.poll
        if poll is None:
            raise DiscordError(400, ERR_NOT_A_POLL, "Cannot expire a non-poll message")
        assert isinstance(poll, PollRecord)
        return poll

    # --- members ---

    async def vote(self, message_id: int, answer_id: int, user: str | int = "alice") -> bool:
        """A member votes (MESSAGE_POLL_VOTE_ADD). False, and nothing changes, once the poll ended."""
        uid = self.world.user_id(user)
        msg = self.world.get_message(None, message_id)
        self.world.check_visible(uid, msg.channel_id)
        poll = self._poll_of(msg)
        if poll.finalized or self.world.wall() >= poll.expiry:
            self.world.note(f"vote on the ended poll {message_id} refused ({ERR_POLL_EXPIRED} Poll expired)")
            return False
        if answer_id not in dict(poll.answers):
            raise DiscordError(400, 50035, "Invalid Form Body", detail=f"no answer {answer_id}")
        if uid in poll.votes.get(answer_id, []):
            return True
        if not poll.allow_multiselect:  # a single-choice poll moves the vote
            for other, voters in poll.votes.items():
                if uid in voters:
                    voters.remove(uid)
                    await self._dispatch("MESSAGE_POLL_VOTE_REMOVE", msg, other, uid)
        poll.votes.setdefault(answer_id, []).append(uid)
        await self._dispatch("MESSAGE_POLL_VOTE_ADD", msg, answer_id, uid)
        return True

    async def unvote(self, message_id: int, answer_id: int, user: str | int = "alice") -> bool:
        uid = self.world.user_id(user)
        msg = self.world.get_message(None, message_id)
        poll = self._poll_of(msg)
        voters = poll.votes.get(answer_id, [])
        if poll.finalized or uid not in voters:
            return False
        voters.remove(uid)
        await self._dispatch("MESSAGE_POLL_VOTE_REMOVE", msg, answer_id, uid)
        return True

    async def end_poll(self, message_id: int) -> MessageRecord:
        """Discord's clock reaches the poll's expiry: it ends; returns the poll-result message."""
        msg = self.world.get_message(None, message_id)
        poll = self._poll_of(msg)
        if poll.finalized:
            raise DiscordError(400, ERR_POLL_EXPIRED, "Poll expired")
        return await self._finalize(msg, poll)

    # --- the bot ---

    async def _h_expire(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self.world.check_channel(cid)
        msg = self.world.get_message(cid, r.int("message_id"))
        poll = self._poll_of(msg)
        if msg.author_id != self.world.bot_user.id:
            raise DiscordError(403, 50005, "Cannot execute action on a message authored by another user")
        if poll.finalized:
            raise DiscordError(400, ERR_POLL_EXPIRED, "Poll expired")
        await self._finalize(msg, poll)
        return json_response(self.messages.rest_payload(msg))

    async def _h_voters(self, r: Req) -> web.StreamResponse:
        cid = r.int("channel_id")
        self.world.require(READ_MESSAGE_HISTORY, "read message history", cid)
        msg = self.world.get_message(cid, r.int("message_id"))
        poll = self._poll_of(msg)
        voters = poll.votes.get(r.int("answer_id"), [])
        return json_response({"users": [self.world.user_records[u].payload() for u in voters]})

    # --- ending ---

    async def _finalize(self, msg: MessageRecord, poll: PollRecord) -> MessageRecord:
        poll.finalized = True
        poll.expiry = min(poll.expiry, self.world.wall())
        await self.messages.dispatch("MESSAGE_UPDATE", msg)
        counts = poll.counts()
        total = sum(counts.values())
        best = max(counts.values(), default=0)
        leaders = [a for a, c in counts.items() if c == best]
        fields = [
            {"name": "poll_question_text", "value": poll.question, "inline": False},
            {"name": "victor_answer_votes", "value": str(best if len(leaders) == 1 else 0), "inline": False},
            {"name": "total_votes", "value": str(total), "inline": False},
        ]
        if best and len(leaders) == 1:  # Discord names no victor on a tie or without votes
            fields.append({"name": "victor_answer_id", "value": str(leaders[0]), "inline": False})
            fields.append(
                {"name": "victor_answer_text", "value": dict(poll.answers)[leaders[0]], "inline": False}
            )
        guild = self.world.guild_of(msg.channel_id)
        result = self.messages.create(
            channel_id=msg.channel_id,
            payload={
                "embeds": [{"type": "poll_result", "fields": fields}],
                "message_reference": {
                    "type": 0,
                    "message_id": str(msg.id),
                    "channel_id": str(msg.channel_id),
                    "guild_id": str(guild.id),
                },
            },
            files=[],
            via="poll result",
            author_id=msg.author_id,
            mtype=MESSAGE_POLL_RESULT,
        )
        result.allowed_mentions_history.clear()
        await self.messages.dispatch("MESSAGE_CREATE", result)
        return result

    async def _dispatch(self, event: str, msg: MessageRecord, answer_id: int, user_id: int) -> None:
        guild = self.world.guild_of(msg.channel_id)
        if not guild.has_member(self.world.bot_user.id):
            return
        data = {
            "user_id": str(user_id),
            "channel_id": str(msg.channel_id),
            "message_id": str(msg.id),
            "guild_id": str(guild.id),
            "answer_id": answer_id,
        }
        await self.gateway.dispatch(event, data)
