"""The check helpers say what is wrong, and the forbidden-call guard restores what it replaced."""

import pytest
import torch

from course.checks import check_close, check_shape, forbidden_calls, relative_error


def test_check_shape_reports_both_shapes():
    with pytest.raises(AssertionError, match=r"expected shape \(2, 3\), got \(3, 2\)"):
        check_shape(torch.zeros(3, 2), (2, 3), "weights")


def test_check_close_reports_relative_error_and_first_mismatch():
    expected = torch.ones(4)
    actual = expected.clone()
    actual[2] = 1.5
    with pytest.raises(AssertionError, match=r"relative error .* index \(2,\): got 1.5, expected 1"):
        check_close(actual, expected, "outputs")


def test_check_close_rejects_nan_and_wrong_dtype():
    with pytest.raises(AssertionError, match="NaN"):
        check_close(torch.tensor([float("nan"), 1.0]), torch.ones(2))
    with pytest.raises(AssertionError, match="dtype"):
        check_close(torch.ones(2, dtype=torch.float64), torch.ones(2))
    check_close(torch.ones(2), torch.ones(2))


def test_relative_error_is_scale_free():
    assert relative_error(torch.tensor([2.0]), torch.tensor([2.0])) == 0
    assert relative_error(torch.tensor([1e6 * 1.01]), torch.tensor([1e6])) == pytest.approx(relative_error(torch.tensor([1.01]), torch.tensor([1.0])))


def test_forbidden_calls_refuses_then_restores():
    original = torch.softmax
    with forbidden_calls((torch, "softmax")):
        with pytest.raises(AssertionError, match="may not call torch.softmax"):
            torch.softmax(torch.ones(2), dim=0)
    assert torch.softmax is original
