"""Checks used by the exercises' tests: each failure says what was expected and by how much it missed.

A bare ``assert torch.allclose(a, b)`` only says "AssertionError". A student needs to know
which output, what shape, and how far off it was, the way CS231n reports a relative error.
"""

import torch


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max(|a| + |e|), 0 when both are zero: scale-free, so one number reads for any size."""
    actual, expected = actual.detach().double(), expected.detach().double()
    denominator = (actual.abs() + expected.abs()).max().item()
    return 0.0 if denominator == 0 else (actual - expected).abs().max().item() / denominator


def check_shape(actual: torch.Tensor, expected_shape, name: str = "output") -> None:
    expected_shape = tuple(expected_shape)
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{name}: expected a torch.Tensor of shape {expected_shape}, got {type(actual).__name__}")
    if tuple(actual.shape) != expected_shape:
        raise AssertionError(f"{name}: expected shape {expected_shape}, got {tuple(actual.shape)}")


def check_close(actual, expected: torch.Tensor, name: str = "output", atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Shape, dtype, finiteness, then values: the first thing that is wrong is the one reported."""
    check_shape(actual, expected.shape, name)
    if actual.dtype != expected.dtype:
        raise AssertionError(f"{name}: expected dtype {expected.dtype}, got {actual.dtype}")
    if not torch.isfinite(actual).all() and torch.isfinite(expected).all():
        bad = (~torch.isfinite(actual)).sum().item()
        raise AssertionError(f"{name}: {bad} entries are NaN or infinite; the expected values are all finite")
    difference = (actual.detach().double() - expected.detach().double()).abs()
    tolerance = atol + rtol * expected.detach().double().abs()
    if (difference > tolerance).any():
        where = tuple(int(i) for i in torch.nonzero(difference > tolerance)[0])
        raise AssertionError(
            f"{name}: values differ (relative error {relative_error(actual, expected):.2e}); "
            f"first mismatch at index {where}: got {actual[where].item():.6g}, expected {expected[where].item():.6g}"
        )


class forbidden_calls:
    """Within this block, calling one of the given functions raises an AssertionError naming it.

    Used by hidden tests to check that an exercise does not hand its work to the built-in it
    asks the student to write, e.g. ``forbidden_calls((torch, "softmax"), (torch.Tensor, "softmax"))``.
    """

    def __init__(self, *targets):
        self.targets = targets
        self.saved = []

    def __enter__(self):
        for owner, name in self.targets:
            original = getattr(owner, name)
            self.saved.append((owner, name, original))

            def refuse(*args, _name=f"{getattr(owner, '__name__', owner)}.{name}", **kwargs):
                raise AssertionError(f"this exercise may not call {_name}; write it with basic tensor operations")

            setattr(owner, name, refuse)
        return self

    def __exit__(self, *exc_info):
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)
        self.saved.clear()
        return False


class largest_new_tensor:
    """Within this block, watch every tensor operation torch runs and keep the largest new floating-point result.

    ``with largest_new_tensor() as watch: f(x)`` then ``watch.numel`` (number of elements),
    ``watch.shape`` and ``watch.operation`` describe it. Views (``transpose``, slicing, ``expand``, ...)
    share their input's memory and are not counted. Used to check that an exercise never forms a
    tensor as large as the one it must avoid (the full T x T score matrix of tiled attention).
    """

    def __init__(self):
        self.numel, self.shape, self.operation = 0, None, None

    def __enter__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        watch = self

        class _Watch(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                result = func(*args, **(kwargs or {}))
                if not func.is_view:
                    results = result if isinstance(result, (tuple, list)) else (result,)
                    for tensor in results:
                        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and tensor.numel() > watch.numel:
                            watch.numel, watch.shape, watch.operation = tensor.numel(), tuple(tensor.shape), str(func)
                return result

        self._mode = _Watch()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc_info):
        self._mode.__exit__(*exc_info)
        return False
