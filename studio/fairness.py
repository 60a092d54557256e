"""Fair scheduling: start-time fair queueing mapped onto arq's job scores.

arq's worker runs, in score order, the jobs of its sorted set whose score is <= now (a later
score means "deferred"). So fairness is decided once, at enqueue time, by the score:

- Each person p has a finish tag F_p; each lane a virtual clock V = the tag of the lane's
  oldest job still in the queue (waiting or running), or, with the lane empty, the largest
  finish tag handed out. A job of cost c gets the start tag S = max(V, F_p) and F_p becomes
  S + c. Someone with 100 jobs queued has F_p 100 ahead of V; a newcomer starts at V, so it
  waits behind at most one job per active person, not behind the batch (Goyal et al., SFQ).
- Scores live in the past, so every job is runnable at once: the fast lane's tags map onto
  [FAST_ORIGIN, RELAX_ORIGIN), the relax lane's onto [RELAX_ORIGIN, LANES_END), and LANES_END
  is years ago. Every relax job scores after every fast job: relax runs only when fast is
  empty. A score arq gives itself (now + defer, after a Retry) lands after both lanes.
- Jobs with the same start tag keep their arrival order: each takes the next of SLOTS
  sub-scores inside its tag.
- A job's cost is its GPU work in units of one image at its model's own default steps and
  size (``job_cost``): a grid of four costs four turns of a single image, so people share GPU
  time, not job counts.

The whole assignment is one Lua script (ASSIGN_AND_ENQUEUE), atomic in Redis, which also writes
arq's job record, so a job is never runnable with a provisional score. ``assign`` below is the
same rule in Python, for the tests and to read; the integration tests check the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Lane = Literal["fast", "relax"]
LANES: tuple[Lane, ...] = ("fast", "relax")
DEFAULT_LANE: Lane = "fast"

SLOTS = 1000  # score units per unit of cost: room for 1000 jobs at one tag, in arrival order
FAST_ORIGIN = 1_000_000_000_000  # epoch ms: September 2001
RELAX_ORIGIN = 1_300_000_000_000  # March 2011
LANES_END = 1_600_000_000_000  # September 2020: any score arq sets itself (now + ...) is later
FIFO_PERSON = "*"  # with fair scheduling off, everyone is this one person: first in, first out
MAX_COST = 64  # a job's cost in turns at most (eight 2048² images at twice the steps is still 64)


def job_cost(images: int, steps: int, pixels: int, base_steps: int, base_pixels: int) -> int:
    """Turns a generation takes: images * steps * pixels against one image of the model's
    default steps and size (denoising time grows about linearly in each), rounded, 1..MAX_COST."""
    work = images * (steps / max(base_steps, 1)) * (pixels / max(base_pixels, 1))
    return max(1, min(MAX_COST, round(work)))


def lane_range(lane: Lane) -> tuple[int, int]:
    """The lane's scores: [low, high)."""
    return (FAST_ORIGIN, RELAX_ORIGIN) if lane == "fast" else (RELAX_ORIGIN, LANES_END)


def lane_of_score(score: float) -> Lane | None:
    """Which lane a score is in; None for one arq set itself (a retried job)."""
    for lane in LANES:
        low, high = lane_range(lane)
        if low <= score < high:
            return lane
    return None


@dataclass
class LaneState:
    """One lane of one queue, as the rule sees it (Redis holds the same in keys)."""

    queued: dict[str, int] = field(default_factory=dict)  # job id -> offset (score - lane origin)
    finish: dict[str, int] = field(default_factory=dict)  # person -> finish tag (offset)
    frontier: int = 0  # the largest finish tag handed out: the clock when the lane is empty

    def clock(self) -> int:
        """V: the tag of the oldest queued job, or the frontier when none is queued."""
        if not self.queued:
            return self.frontier
        return min(self.queued.values()) // SLOTS * SLOTS

    def assign(self, job_id: str, person: str, cost: int = 1) -> int:
        """Queue a job: its offset in the lane (the score is the lane's origin plus it)."""
        if cost < 1:
            raise ValueError("a job costs at least 1")
        start = max(self.clock(), self.finish.get(person, 0))
        self.finish[person] = start + cost * SLOTS
        self.frontier = max(self.frontier, self.finish[person])
        same_tag = [offset for offset in self.queued.values() if start <= offset < start + SLOTS]
        offset = min(max(same_tag) + 1, start + SLOTS - 1) if same_tag else start
        self.queued[job_id] = offset
        return offset

    def order(self) -> list[str]:
        """Job ids in the order workers take them (score, then id, as Redis sorts)."""
        return sorted(self.queued, key=lambda job_id: (self.queued[job_id], job_id))

    def take(self) -> str:
        """A worker starts and finishes the first job (the simulator's whole worker)."""
        first = self.order()[0]
        del self.queued[first]
        return first


def person_key(queue_name: str, lane: Lane, person: str) -> str:
    return f"{queue_name}:fair:{lane}:finish:{person}"


def frontier_key(queue_name: str, lane: Lane) -> str:
    return f"{queue_name}:fair:{lane}:frontier"


# KEYS: queue, arq job key, arq result key, the person's finish tag, the lane's frontier.
# ARGV: lane low, lane high, cost in score units, SLOTS, job bytes, job expiry ms, tag expiry s,
# job id.
# Returns the score, or -1 when a job or a result with this id exists (arq's rule: a no-op).
ASSIGN_AND_ENQUEUE = """
if redis.call('EXISTS', KEYS[2], KEYS[3]) > 0 then return -1 end
local low, high = tonumber(ARGV[1]), tonumber(ARGV[2])
local cost, slots = tonumber(ARGV[3]), tonumber(ARGV[4])
local clock
local function int(x) return string.format('%d', x) end
local head = redis.call('ZRANGEBYSCORE', KEYS[1], int(low), '(' .. int(high), 'WITHSCORES', 'LIMIT', 0, 1)
if head[2] then
  local offset = tonumber(head[2]) - low
  clock = offset - offset % slots
else
  clock = tonumber(redis.call('GET', KEYS[5]) or '0')
end
local start = math.max(clock, tonumber(redis.call('GET', KEYS[4]) or '0'))
local finish = start + cost
redis.call('SET', KEYS[4], int(finish), 'EX', ARGV[7])
local frontier = tonumber(redis.call('GET', KEYS[5]) or '0')
if finish > frontier then redis.call('SET', KEYS[5], int(finish)) end
local offset = start
local last = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. int(low + start + slots), int(low + start),
  'WITHSCORES', 'LIMIT', 0, 1)
if last[2] then offset = math.min(tonumber(last[2]) - low + 1, start + slots - 1) end
local score = low + offset
if score >= high then score = high - 1 end
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
redis.call('ZADD', KEYS[1], int(score), ARGV[8])
return score
"""


def jain_index(values: list[float]) -> float:
    """Jain's fairness index: 1 when all are equal, 1/n when one takes everything."""
    if not values:
        return 1.0
    total = sum(values)
    squares = sum(v * v for v in values)
    return 1.0 if squares == 0 else total * total / (len(values) * squares)
