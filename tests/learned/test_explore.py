"""Exploration: PMFs over the allowed set, true propensities, determinism with a seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.learned.explore import choose, pmf

K = 6


def _case(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    allowed = rng.random((n, K)) < 0.6
    values = np.where(allowed, rng.gamma(2.0, 10.0, (n, K)), np.nan)
    return values, allowed, [f"C{i:07d}" for i in range(n)]


@pytest.mark.parametrize("method", ["epsilon", "softmax"])
def test_pmf_sums_to_one_and_explored_actions_are_strictly_between_0_and_1(method: str) -> None:
    values, allowed, ids = _case(np.random.default_rng(1), 400)
    c = choose(values, allowed, ids, seed=3, method=method)  # type: ignore[arg-type]
    k = allowed.sum(axis=1)
    np.testing.assert_allclose(c.pmf[k > 0].sum(axis=1), 1.0, atol=1e-12)
    assert (c.pmf[~allowed] == 0).all()
    multi = k > 1
    assert ((c.pmf[multi] > 0) == allowed[multi]).all()
    assert (c.pmf[multi][allowed[multi]] < 1).all()
    assert (c.propensity[multi] > 0).all() and (c.propensity[multi] < 1).all()
    # the logged propensity is the PMF of the chosen action, and the chosen action is allowed
    rows = np.flatnonzero(k > 0)
    assert allowed[rows, c.actions[rows]].all()
    np.testing.assert_array_equal(c.propensity[rows], c.pmf[rows, c.actions[rows]])
    assert (c.actions[k == 0] == -1).all() and (c.propensity[k == 0] == 0).all()
    assert (c.propensity[k == 1] == 1).all()


def test_epsilon_greedy_is_vw_epsilon_pmf() -> None:
    values = np.array([[1.0, 3.0, 2.0, np.nan]])
    allowed = np.array([[True, True, True, False]])
    p, greedy = pmf(values, allowed, epsilon=0.1)
    assert greedy[0] == 1
    np.testing.assert_allclose(p[0], [0.1 / 3, 0.9 + 0.1 / 3, 0.1 / 3, 0.0])


def test_same_inputs_and_seed_give_the_same_choice_and_batch_does_not_matter() -> None:
    values, allowed, ids = _case(np.random.default_rng(2), 300)
    a = choose(values, allowed, ids, seed=5, epsilon=0.3)
    b = choose(values, allowed, ids, seed=5, epsilon=0.3)
    np.testing.assert_array_equal(a.actions, b.actions)
    # a customer's draw depends on (seed, customer id) only, not on the rest of the batch
    sub = choose(values[::-1][:50], allowed[::-1][:50], ids[::-1][:50], seed=5, epsilon=0.3)
    np.testing.assert_array_equal(sub.actions, a.actions[::-1][:50])
    other = choose(values, allowed, ids, seed=6, epsilon=0.3)
    assert (other.actions != a.actions).any()


def test_draws_follow_the_pmf() -> None:
    n = 20_000
    values = np.tile([[1.0, 2.0, 3.0]], (n, 1))
    allowed = np.ones((n, 3), dtype=bool)
    c = choose(values, allowed, [f"C{i}" for i in range(n)], seed=0, epsilon=0.3)
    freq = np.bincount(c.actions, minlength=3) / n
    np.testing.assert_allclose(freq, [0.1, 0.1, 0.8], atol=0.015)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=4, max_size=4), min_size=1, max_size=20
    ),
    st.sampled_from(["epsilon", "softmax"]),
    st.floats(0.001, 0.9),
)
def test_propensities_hold_for_any_values(rows: list[list[float | None]], method: str, eps: float) -> None:
    allowed = np.array([[v is not None for v in r] for r in rows])
    values = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
    c = choose(values, allowed, [str(i) for i in range(len(rows))], seed=1, method=method, epsilon=eps)  # type: ignore[arg-type]
    k = allowed.sum(axis=1)
    for i in range(len(rows)):
        if k[i] == 0:
            assert c.actions[i] == -1
            continue
        assert abs(c.pmf[i].sum() - 1) < 1e-9
        assert allowed[i, c.actions[i]]
        if k[i] > 1:
            assert 0 < c.propensity[i] < 1


def test_bad_exploration_settings_are_refused() -> None:
    values, allowed, ids = _case(np.random.default_rng(3), 5)
    with pytest.raises(ValueError, match="epsilon"):
        choose(values, allowed, ids, seed=0, epsilon=0.0)
    with pytest.raises(ValueError, match="unknown exploration"):
        choose(values, allowed, ids, seed=0, method="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="thompson needs the members"):
        choose(values, allowed, ids, seed=0, method="thompson")


def test_thompson_explores_where_the_members_disagree_with_exact_propensities() -> None:
    """Members that agree leave only the floor to explore; members that disagree move `share` of
    the mass to the actions they vote for. Every allowed action keeps 0 < p < 1 (k > 1)."""
    allowed = np.array([[True, True, True, False], [True, True, True, False]])
    agree = np.array([[5.0, 1.0, 0.0, np.nan], [5.0, 1.0, 0.0, np.nan]])
    members = np.stack([agree, agree, agree, agree])  # 4 members
    members[:, 1] = [[5, 1, 0, 0], [1, 5, 0, 0], [1, 5, 0, 0], [1, 1, 5, 0]]  # row 1: they disagree
    values = members.mean(axis=0)
    values[1] = [5.0, 1.0, 0.0, np.nan]  # the greedy (safe) order puts action 0 first
    p, greedy = pmf(values, allowed, method="thompson", members=members, share=0.2, floor=0.03)
    assert greedy.tolist() == [0, 0]
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.all(p[:, :3] > 0) and np.all(p[:, :3] < 1) and np.all(p[:, 3] == 0)
    np.testing.assert_allclose(p[0], [1 - 0.03 + 0.01, 0.01, 0.01, 0.0])  # only the floor explores
    np.testing.assert_allclose(p[1], [0.01 + 0.2 * 0.25 + 0.77, 0.01 + 0.2 * 0.5, 0.01 + 0.2 * 0.25, 0.0])
    ids = np.array(["a", "b"], dtype=object)
    pick = choose(values, allowed, ids, seed=1, method="thompson", members=members, share=0.2, floor=0.03)
    np.testing.assert_allclose(pick.propensity, p[np.arange(2), pick.actions])
