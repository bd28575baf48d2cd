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


FORBIDDEN_MARKER = "this exercise may not call"

# Operations that do the work of a forbidden function under other names: what actually ran when
# a module or a fused kernel was used (seen by the modes in ``forbidden_calls``).
_ALSO_FORBIDDEN = {
    "MultiheadAttention": {"multi_head_attention_forward", "native_multi_head_attention"},
    "TransformerEncoderLayer": {"transformer_encoder_layer_fwd"},
    "TransformerEncoder": {"transformer_encoder_layer_fwd"},
    "CrossEntropyLoss": {"cross_entropy", "nll_loss"},
    "NLLLoss": {"nll_loss"},
    "cross_entropy": {"nll_loss"},
    "RNNCell.forward": {"rnn_tanh_cell", "rnn_relu_cell"},
}


def _forbidden_operation(name: str, forbidden: set[str]) -> str | None:
    """The forbidden name that ``name`` (a torch function or an aten operation) is, or None.

    Leading underscores do not hide a name (``torch._softmax``, ``aten._softmax``), nor do the
    suffixes of its variants (``aten.nll_loss_forward``, ``aten._scaled_dot_product_flash_attention_for_cpu``).
    """
    bare = name.lstrip("_")
    for candidate in forbidden:
        if bare == candidate or bare.startswith(candidate + "_"):
            return candidate
    return None


def _watching_modes(forbidden: set[str]):
    """A torch function mode and a dispatch mode that raise when a forbidden operation runs,
    whatever Python name reached it (``torch.softmax``, ``Tensor.softmax``, ``nn.Softmax``,
    ``torch._softmax``, a reference captured before the test started)."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    def refuse(kind: str, name: str) -> None:
        matched = _forbidden_operation(name, forbidden)
        if matched is not None:
            raise AssertionError(f"{FORBIDDEN_MARKER} {matched} (the {kind} {name} ran); write it with basic tensor operations")

    class WatchFunctions(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            refuse("function", getattr(func, "__name__", str(func)))
            return func(*args, **(kwargs or {}))

    class WatchOperations(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            refuse("operation", f"aten.{func.overloadpacket.__name__}")
            return func(*args, **(kwargs or {}))

    return WatchFunctions(), WatchOperations()


class forbidden_calls:
    """Within this block, running one of the given functions raises an AssertionError naming it.

    Used by hidden tests to check that an exercise does not hand its work to the built-in it
    asks the student to write, e.g. ``forbidden_calls((torch, "softmax"), (torch.Tensor, "softmax"))``.
    Two guards: the named attributes are replaced by functions that refuse, and what actually
    runs is watched (a torch function mode and a dispatch mode), so another spelling of the same
    built-in (``torch._softmax``, ``nn.Softmax(dim)(x)``, ``operator.attrgetter``) is refused too.
    """

    def __init__(self, *targets):
        self.targets = targets
        self.saved = []
        self.modes = []

    def __enter__(self):
        names = set()
        for owner, name in self.targets:
            original = getattr(owner, name)
            self.saved.append((owner, name, original))
            label = f"{getattr(owner, '__name__', owner)}.{name}"
            names.add(label.rsplit(".", 2)[-2] + ".forward" if name == "forward" else name)

            def refuse(*args, _name=label, **kwargs):
                raise AssertionError(f"{FORBIDDEN_MARKER} {_name}; write it with basic tensor operations")

            setattr(owner, name, refuse)
        for name in list(names):
            names |= _ALSO_FORBIDDEN.get(name, set())
        names = {name for name in names if not name.endswith(".forward") and not name[:1].isupper()}
        self.modes = list(_watching_modes(names))
        for mode in self.modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc_info):
        for mode in reversed(self.modes):
            mode.__exit__(*exc_info)
        self.modes = []
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)
        self.saved.clear()
        return False
