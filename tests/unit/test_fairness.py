"""The fair scheduling rule (studio.fairness): turns by person, lanes, and the score layout."""

from __future__ import annotations

import itertools
import time

import pytest

from studio.fairness import (
    FAST_ORIGIN,
    LANES_END,
    MAX_COST,
    RELAX_ORIGIN,
    SLOTS,
    LaneState,
    jain_index,
    job_cost,
    lane_of_score,
    lane_range,
)


def _queue(state: LaneState, person: str, count: int, tag: str = "") -> list[str]:
    ids = [f"{person}{tag}-{i}" for i in range(count)]
    for job_id in ids:
        state.assign(job_id, person)
    return ids


def test_people_take_turns_whatever_their_backlog() -> None:
    lane = LaneState()
    _queue(lane, "batch", 20)
    _queue(lane, "alice", 2)
    _queue(lane, "bob", 2)
    order = [job_id.split("-")[0] for job_id in lane.order()]
    # Each round serves each waiting person once, in arrival order within the round.
    assert order[:6] == ["batch", "alice", "bob", "batch", "alice", "bob"]
    assert order[6:] == ["batch"] * 18


def test_a_newcomer_waits_behind_people_not_jobs() -> None:
    lane = LaneState()
    _queue(lane, "batch", 100)
    for _ in range(30):  # the batch runs a while alone
        assert lane.take().startswith("batch")
    _queue(lane, "late", 1)
    assert lane.order().index("late-0") <= 1  # the job being served, at most, is ahead


def test_no_starvation_while_everyone_else_keeps_sending() -> None:
    """Twenty people each send a new job as soon as theirs ran: the heavy user's ten jobs still run,
    one per round of the twenty (a round is bounded by the people, not by their jobs)."""
    lane = LaneState()
    _queue(lane, "heavy", 10)
    sent = itertools.count()
    for person in range(20):
        lane.assign(f"p{person}-{next(sent)}", f"p{person}")
    served: list[str] = []
    for _ in range(250):
        job_id = lane.take()
        served.append(job_id)
        if not job_id.startswith("heavy"):
            person = job_id.split("-")[0]
            lane.assign(f"{person}-{next(sent)}", person)
    heavy_served = [i for i, job_id in enumerate(served) if job_id.startswith("heavy")]
    assert len(heavy_served) == 10
    gaps = [b - a for a, b in itertools.pairwise([-1, *heavy_served])]
    assert max(gaps) <= 21


def test_an_idle_person_gets_no_credit_for_the_time_away() -> None:
    lane = LaneState()
    _queue(lane, "a", 1)
    lane.take()
    _queue(lane, "b", 10)
    for _ in range(5):
        lane.take()
    _queue(lane, "a", 3, tag="later")
    order = [job_id.split("-")[0] for job_id in lane.order()]
    assert order[:6] == ["b", "alater", "b", "alater", "b", "alater"]  # turns, not a burst of a's


def test_batch_owner_is_one_person_whatever_sends_it() -> None:
    """An API key's batch and its owner's Discord jobs share one turn (the person is the owner id)."""
    lane = LaneState()
    for i in range(10):
        lane.assign(f"api-{i}", "discord:1")
    lane.assign("bot-0", "discord:1")
    lane.assign("other-0", "discord:2")
    order = lane.order()
    assert order.index("other-0") == 1
    assert order[-1] == "bot-0"  # after the owner's own batch: it is their turn that waits


def test_same_tag_keeps_arrival_order() -> None:
    lane = LaneState()
    names = [f"p{i:03d}" for i in range(50)][::-1]  # ids sort the other way round
    for name in names:
        lane.assign(name, name)
    assert lane.order() == names
    offsets = sorted(lane.queued.values())
    assert offsets == list(range(50))  # sub-slots of the one tag


def test_cost_weights_turns() -> None:
    heavy = LaneState()
    heavy.assign("h-0", "h", cost=3)
    heavy.assign("l-0", "l")
    heavy.assign("l-1", "l")
    heavy.assign("h-1", "h", cost=3)
    assert heavy.order() == ["h-0", "l-0", "l-1", "h-1"]
    with pytest.raises(ValueError):
        heavy.assign("x", "x", cost=0)


def test_a_jobs_cost_is_its_gpu_work_in_default_images() -> None:
    one = job_cost(1, 30, 1024 * 1024, 30, 1024 * 1024)
    assert one == 1
    assert job_cost(4, 30, 1024 * 1024, 30, 1024 * 1024) == 4  # a grid of four: four turns
    assert job_cost(1, 60, 1024 * 1024, 30, 1024 * 1024) == 2  # twice the steps
    assert job_cost(1, 30, 2048 * 2048, 30, 1024 * 1024) == 4  # four times the pixels
    assert job_cost(1, 4, 512 * 512, 30, 1024 * 1024) == 1  # never less than one turn
    assert job_cost(8, 150, 2048 * 2048, 4, 512 * 512) == MAX_COST
    # Someone sending grids of four and someone sending single images share GPU time, not jobs:
    # one grid, then the other's four singles, then the next grid.
    lane = LaneState()
    for n in range(2):
        lane.assign(f"grid-{n}", "g", cost=job_cost(4, 30, 1024 * 1024, 30, 1024 * 1024))
    for n in range(4):
        lane.assign(f"single-{n}", "s", cost=one)
    assert lane.order() == ["grid-0", "single-0", "single-1", "single-2", "single-3", "grid-1"]


def test_lanes_every_relax_score_after_every_fast_score_and_all_runnable_now() -> None:
    fast, relax = lane_range("fast"), lane_range("relax")
    assert fast[1] == relax[0] == RELAX_ORIGIN
    assert FAST_ORIGIN > 0  # arq skips a job whose score is 0
    now_ms = time.time() * 1000
    assert now_ms > LANES_END  # arq runs only scores <= now: every lane score is runnable
    assert lane_of_score(FAST_ORIGIN + 5 * SLOTS) == "fast"
    assert lane_of_score(RELAX_ORIGIN) == "relax"
    assert lane_of_score(now_ms) is None  # arq's own (a Retry) lands after both lanes
    # Doubles hold these integers exactly, so Redis orders them exactly.
    assert float(LANES_END - 1) != float(LANES_END - 2)


def test_jain_index() -> None:
    assert jain_index([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert jain_index([1.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain_index([]) == 1.0


def test_relax_jobs_score_after_fast_jobs_queued_later() -> None:
    fast, relax = LaneState(), LaneState()
    scores = {"relax-early": lane_range("relax")[0] + relax.assign("relax-early", "r")}
    for i in range(5):  # fast jobs far down their lane's turns, queued after the relax job
        scores[f"fast-{i}"] = lane_range("fast")[0] + fast.assign(f"fast-{i}", "f")
    assert max(scores, key=lambda job_id: scores[job_id]) == "relax-early"
