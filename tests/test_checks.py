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
    with pytest.raises(AssertionError, match="may not call torch.softmax"):  # raised again as the block ends
        with forbidden_calls((torch, "softmax")):
            with pytest.raises(AssertionError, match="may not call torch.softmax"):
                torch.softmax(torch.ones(2), dim=0)
    assert torch.softmax is original


def test_a_refusal_the_answer_catches_still_fails_the_test():
    captured = torch.softmax

    def answer(x):
        try:
            return captured(x, 0)  # refused by the watching modes
        except AssertionError:
            return x

    with pytest.raises(AssertionError, match="may not call softmax"):
        with forbidden_calls((torch, "softmax")):
            answer(torch.ones(2))
    assert torch.softmax is captured
    with forbidden_calls((torch, "softmax")):  # nothing forbidden ran: nothing raised
        torch.ones(2).exp()


# --- the likely cause of a failure, one test per common mistake -----------------------------------

import math  # noqa: E402

import torch.nn.functional as F  # noqa: E402

generator = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(2, 4, 8, generator=generator) for _ in range(3))
scores = q @ k.transpose(-2, -1) / math.sqrt(8)


def failure(actual, expected, **options) -> str:
    with pytest.raises(AssertionError) as raised:
        check_close(actual, expected, "result", **options)
    return str(raised.value)


def test_a_missing_scale_by_one_over_root_d_is_named():
    message = failure(q @ k.transpose(-2, -1), scores)
    assert "every entry is 2.828 (= √8) times the expected one" in message and "1/√d" in message


def test_a_constant_factor_or_a_flipped_sign_is_named():
    assert "(= 2) times the expected one" in failure(2 * scores, scores)
    assert "sign flipped" in failure(-scores, scores)


def test_softmax_weights_at_another_temperature_name_the_missing_scale():
    message = failure(torch.softmax(scores * math.sqrt(8), dim=-1), torch.softmax(scores, dim=-1))
    assert "multiplied by 2.828 (= √8) before the softmax" in message and "1/√d" in message


def test_a_softmax_over_the_wrong_axis_is_named():
    message = failure(torch.softmax(scores, dim=-2), torch.softmax(scores, dim=-1))
    assert "sum to 1 along dim=-2, the expected ones along dim=-1" in message


def test_a_transposed_result_is_named():
    assert "the expected one transposed (its last two axes swapped)" in failure(scores.transpose(-1, -2), scores)


def test_a_transposed_mask_is_named():
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    expected = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
    got = torch.softmax(scores.masked_fill(~causal.T, float("-inf")), dim=-1)
    assert "is the mask transposed" in failure(got, expected)


def test_an_inverted_or_missing_mask_is_named():
    keep = torch.tensor([True, True, False, True])
    expected = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
    assert "is the mask inverted" in failure(torch.softmax(scores.masked_fill(keep, float("-inf")), dim=-1), expected)
    assert "is the mask applied" in failure(torch.softmax(scores, dim=-1), expected)


def test_heads_split_with_a_view_are_named_as_values_in_the_wrong_places():
    x = torch.randn(2, 3, 6, generator=generator)
    right = x.view(2, 3, 2, 3).transpose(1, 2)  # (B, H, T, Dh)
    message = failure(x.view(2, 2, 3, 3), right)
    assert "holds exactly the expected values, but in other places" in message and "transpose" in message


def test_slices_in_another_order_are_named_with_the_order():
    x = torch.randn(2, 3, 4, 5, generator=generator)
    assert "along dim=-3 are the expected ones in another order (yours [0, 1, 2] = expected [2, 0, 1])" in failure(x[:, [2, 0, 1]], x)


def test_a_constant_offset_is_named():
    assert "off by the same +0.5" in failure(scores + 0.5, scores)


def test_a_named_mistake_wins_and_the_hint_is_shown():
    unscaled = F.scaled_dot_product_attention(q, k, v, scale=1.0)
    message = failure(unscaled, F.scaled_dot_product_attention(q, k, v),
                      mistakes={"the scores are not divided by √d": unscaled}, hint="divide Q Kᵀ by √d before the softmax")
    assert "exactly what you get if the scores are not divided by √d" in message
    assert message.endswith("Hint: divide Q Kᵀ by √d before the softmax")


def test_a_difference_with_no_pattern_names_no_cause():
    noisy = scores + 0.1 * torch.randn(scores.shape, generator=generator)
    assert "Likely cause" not in failure(noisy, scores)


def test_shape_diagnoses():
    with pytest.raises(AssertionError, match=r"same sizes in another order .* transpose"):
        check_shape(torch.zeros(2, 5, 3), (2, 3, 5))
    with pytest.raises(AssertionError, match=r"same number of entries \(24\) in another shape"):
        check_shape(torch.zeros(4, 6), (2, 3, 4))
    with pytest.raises(AssertionError, match=r"dimension -1 \(size 5\) is missing: .*keepdim=True"):
        check_shape(torch.zeros(2, 3), (2, 3, 5))
    with pytest.raises(AssertionError, match=r"extra dimension of size 1 at dim -2"):
        check_shape(torch.zeros(2, 1, 3), (2, 3))
    with pytest.raises(AssertionError, match=r"Hint: one weight per source position"):
        check_shape(torch.zeros(2, 3), (2, 4), hint="one weight per source position")


def test_nan_names_its_usual_causes():
    with pytest.raises(AssertionError, match="subtract the maximum first"):
        check_close(torch.tensor([float("nan"), 1.0]), torch.ones(2))


def test_the_operation_watch_refuses_what_the_function_watch_cannot_see():
    """With torch functions' overrides disabled (``torch._C.DisableTorchFunction``) only the dispatch mode still sees
    the call: a captured softmax is refused as the operation aten._softmax (its name once never matched, "aten." kept)."""
    captured = torch.softmax
    with pytest.raises(AssertionError, match=r"softmax \(the operation aten\._softmax ran\)"):
        with forbidden_calls((torch, "softmax"), (torch.Tensor, "softmax")):
            with torch._C.DisableTorchFunction():
                captured(torch.randn(2, 3), -1)
    with forbidden_calls((torch, "softmax")):  # other operations pass
        with torch._C.DisableTorchFunction():
            torch.exp(torch.randn(2, 3)).sum(-1)
