"""/evolve's rules without Discord: the winner, the poll's duration, bad input in one sentence."""

from __future__ import annotations

import pytest

from studio.errors import InvalidRecipe
from studio.evolve import check, poll_hours, winner_of


def test_most_votes_win_and_ties_go_to_the_lower_image() -> None:
    assert winner_of([1, 0, 2, 0]) == 2
    assert winner_of([0, 3, 0, 3]) == 1  # a tie: the lower image number
    assert winner_of([0, 0, 0, 0]) == 0  # no votes: image 1 carries on
    assert winner_of([]) == 0


def test_the_poll_lasts_whole_hours_at_least_one() -> None:
    assert [poll_hours(m) for m in (1, 30, 60, 61, 24 * 60)] == [1, 1, 1, 2, 24]


@pytest.mark.parametrize(
    ("prompt", "rounds", "minutes", "words"),
    [
        ("a fox", 0, 60, "An evolution runs 1 to 5 rounds."),
        ("a fox", 6, 60, "An evolution runs 1 to 5 rounds."),
        ("  -- ", 2, 60, "The prompt has no words"),
        ("a fox", 2, 0, "A round's vote lasts 1 to 10080 minutes"),
        ("a fox", 2, 10081, "A round's vote lasts 1 to 10080 minutes"),
    ],
)
def test_bad_input_is_one_sentence(prompt: str, rounds: int, minutes: int, words: str) -> None:
    with pytest.raises(InvalidRecipe) as refused:
        check(prompt, rounds, minutes)
    assert str(refused.value).startswith(words) and str(refused.value).count(".") == 1


def test_good_input_passes() -> None:
    check("a fox --seed 3", 5, 10080)
