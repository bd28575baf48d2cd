"""course.reversal_exercise.run_within_budget: chapter 2's training loop is held to its budget of optimizer steps."""

import pytest
import torch

from course.reversal_exercise import run_within_budget


def loop(steps: int, swallow: bool = False):
    """A loop of ``steps`` optimizer steps on one parameter; returns how many it made."""
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    made = 0
    for _ in range(steps):
        optimizer.zero_grad()
        (weight - 1).pow(2).sum().backward()
        try:
            optimizer.step()
        except AssertionError:
            if not swallow:
                raise
        made += 1
    return made


def test_a_loop_within_its_budget_runs_and_is_counted():
    counts = {}
    assert run_within_budget(lambda: loop(5), 5, counts=counts) == 5
    assert counts == {"steps": 5, "passes": 0}


def test_a_loop_over_its_budget_is_stopped_at_the_first_step_too_many():
    made = []
    with pytest.raises(AssertionError, match="optimizer step 6: the budget is 5"):
        run_within_budget(lambda: made.append(loop(1000)), 5)
    assert made == []  # the loop never finished its 1000 steps


def test_a_loop_that_catches_the_stop_is_refused_at_the_end():
    with pytest.raises(AssertionError, match="20 optimizer steps; the budget is 5"):
        run_within_budget(lambda: loop(20, swallow=True), 5)


def test_the_hooks_are_removed_after_a_stop():
    with pytest.raises(AssertionError):
        run_within_budget(lambda: loop(10), 5)
    assert loop(10) == 10  # no budget outside run_within_budget
