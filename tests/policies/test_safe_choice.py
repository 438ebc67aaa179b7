"""Safe improvement: the learned policy leaves the incumbent's action only where the ensemble's
spread puts the gain's lower bound above zero, and then takes the best sure gain."""

from __future__ import annotations

import numpy as np

from agent.policies.learned import safe_choice

ALLOWED = np.array([True, True, True, False])


def members(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def test_a_sure_gain_is_taken() -> None:
    m = members([10, 14, 11, 0], [10, 15, 11, 0], [10, 13, 11, 0], [10, 14, 12, 0], [10, 15, 11, 0])
    assert safe_choice(m, ALLOWED, incumbent=0, confidence=0.9) == 1


def test_an_unsure_gain_is_not_taken() -> None:
    """Action 1 is better on average (+2) but the members disagree on its sign."""
    m = members([10, 20, 9, 0], [10, 4, 9, 0], [10, 18, 9, 0], [10, 3, 9, 0], [10, 15, 9, 0])
    assert np.mean(m[:, 1] - m[:, 0]) > 0
    assert safe_choice(m, ALLOWED, incumbent=0, confidence=0.9) == 0


def test_the_best_sure_gain_wins_over_a_larger_unsure_one() -> None:
    m = members([10, 30, 12, 0], [10, 2, 12.5, 0], [10, 28, 12, 0], [10, 1, 12.2, 0], [10, 25, 12.1, 0])
    assert safe_choice(m, ALLOWED, incumbent=0, confidence=0.9) == 2


def test_a_disallowed_action_is_never_chosen() -> None:
    m = members([10, 9, 9, 50], [10, 9, 9, 51], [10, 9, 9, 52])
    assert safe_choice(m, ALLOWED, incumbent=0, confidence=0.9) == 0


def test_one_member_switches_on_any_gain() -> None:
    assert safe_choice(members([10, 10.5, 9, 0]), ALLOWED, incumbent=0, confidence=0.99) == 1
