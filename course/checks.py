"""Checks used by the exercises' tests: each failure says what was expected, by how much it missed,
and, where the numbers show it, the likely cause.

A bare ``assert torch.allclose(a, b)`` only says "AssertionError". A student needs to know
which output, what shape, and how far off it was, the way CS231n reports a relative error; and
a relative error of 0.22 does not say *why*. So when a check fails it also looks at how the
result differs from the expected one, and names the common mistakes that the numbers reveal:

* a constant factor (every entry 2.83 times too large: 2.83 = √8, a missing 1/√d);
* a softmax at another temperature (weights as if the scores were multiplied by a constant);
* a normalisation over the wrong axis (rows that sum to 1 along another dimension);
* a transposed result, or a transposed or inverted mask (zeros in the wrong places);
* the right values in the wrong places (a ``view`` where a ``transpose`` was needed, heads or
  positions permuted);
* shapes with the right sizes in another order, or a dimension lost to a reduction.

A test can also pass ``mistakes``: {description: what that mistake would produce}, computed with
the built-ins the test already compares against, and a ``hint`` for its exercise.
"""

import itertools
import math

import torch

from course.channel import FORBIDDEN_MARKER, RELATIONS, REPORTS_ENVIRONMENT, report_file_name  # noqa: F401  (the grader's side reads them there)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max(|a| + |e|), 0 when both are zero: scale-free, so one number reads for any size."""
    actual, expected = actual.detach().double(), expected.detach().double()
    denominator = (actual.abs() + expected.abs()).max().item()
    return 0.0 if denominator == 0 else (actual - expected).abs().max().item() / denominator


def _with_hint(message: str, hint: str | None) -> str:
    return f"{message}\nHint: {hint}" if hint else message


def _shape_diagnosis(got: tuple, want: tuple) -> str | None:
    if len(got) == len(want) and sorted(got) == sorted(want):
        swapped = [i - len(want) for i in range(len(want)) if got[i] != want[i]]
        return (f"the same sizes in another order (dims {swapped} differ): are two dimensions swapped, "
                "a transpose missing or one too many?")
    if len(got) == len(want) - 1:
        for i in range(len(want)):
            if want[:i] + want[i + 1:] == got:
                return (f"dimension {i - len(want)} (size {want[i]}) is missing: a sum, max or mean without "
                        "keepdim=True, a squeeze, or an index that dropped it?")
    if len(got) == len(want) + 1:
        for i in range(len(got)):
            if got[i] == 1 and got[:i] + got[i + 1:] == want:
                return f"an extra dimension of size 1 at dim {i - len(got)}: a keepdim=True or unsqueeze too many?"
    if math.prod(got) == math.prod(want) and got:
        return f"the same number of entries ({math.prod(want)}) in another shape: a view or reshape into the wrong shape?"
    if len(got) == len(want):
        wrong = [f"dim {i - len(want)} is {got[i]}, expected {want[i]}" for i in range(len(want)) if got[i] != want[i]]
        return "; ".join(wrong)
    return None


def check_shape(actual: torch.Tensor, expected_shape, name: str = "output", hint: str | None = None) -> None:
    expected_shape = tuple(expected_shape)
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(_with_hint(f"{name}: expected a torch.Tensor of shape {expected_shape}, got {type(actual).__name__}", hint))
    if tuple(actual.shape) != expected_shape:
        message = f"{name}: expected shape {expected_shape}, got {tuple(actual.shape)}"
        cause = _shape_diagnosis(tuple(actual.shape), expected_shape)
        raise AssertionError(_with_hint(f"{message}\nLikely cause: {cause}" if cause else message, hint))


# --- what the numbers reveal -------------------------------------------------------------------

def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    scale = max(a.abs().max().item() if a.numel() else 0.0, b.abs().max().item() if b.numel() else 0.0, 1e-30)
    return a.shape == b.shape and bool(((a - b).abs() <= atol * scale + rtol * b.abs()).all())


def _name_factor(c: float) -> str:
    """2.828 -> '2.83 (= √8)', 0.125 -> '0.125 (= 1/8)', -1 -> '-1'."""
    text = f"{c:.4g}"
    for value, prefix in ((abs(c), ""), (1 / abs(c), "1/")):
        whole, square = round(value), round(value * value)
        if whole >= 2 and abs(value - whole) < 1e-3 * value:
            return f"{text} (= {'-' if c < 0 else ''}{prefix}{whole})"
        if square >= 2 and abs(value * value - square) < 1e-3 * value * value:
            return f"{text} (= {'-' if c < 0 else ''}{prefix}√{square})"
    return text


def _constant_factor(a: torch.Tensor, e: torch.Tensor) -> str | None:
    if (e != 0).sum() < 2:
        return None
    c = ((a * e).sum() / (e * e).sum()).item()
    if c == 0 or abs(c - 1) < 1e-3 or not _close(a, c * e, rtol=1e-3):
        return None
    if abs(c + 1) < 1e-3:
        return "every entry has the expected size and the opposite sign: a sign flipped (a subtraction the wrong way round)?"
    named = _name_factor(c)
    cause = "a missing or extra constant factor"
    if "√" in named:
        cause = "a scale by 1/√d missing (or applied twice, or √d where 1/√d belongs)"
    return f"every entry is {named} times the expected one: {cause}?"


def _constant_offset(a: torch.Tensor, e: torch.Tensor) -> str | None:
    difference = a - e
    offset = difference.mean().item()
    scale = max(e.abs().max().item(), 1e-30)
    if a.numel() < 2 or abs(offset) < 1e-6 * scale or not _close(difference, torch.full_like(difference, offset), rtol=1e-3, atol=1e-6):
        return None
    return f"every entry is off by the same {offset:+.4g}: a constant added or missing (a bias, or a shift not undone)?"


def _transposed(a: torch.Tensor, e: torch.Tensor) -> str | None:
    for i, j in itertools.combinations(range(a.dim()), 2):
        if a.shape[i] == a.shape[j] > 1 and _close(a, e.transpose(i, j)):
            last_two = (i, j) == (a.dim() - 2, a.dim() - 1)
            where = "its last two axes swapped" if last_two else f"dims {i - a.dim()} and {j - a.dim()} swapped"
            return (f"your result is the expected one transposed ({where}): a transpose missing or one too many "
                    "(keys @ queries.T for queries @ keys.T, or a mask built the wrong way round)?")
    return None


def _sums_to_one(x: torch.Tensor, dim: int) -> bool:
    """Along `dim`, every slice sums to 1 (or 0: a fully masked row) and no entry is negative."""
    sums = x.sum(dim)
    return bool((x >= -1e-6).all()) and bool((((sums - 1).abs() < 1e-4) | (sums.abs() < 1e-6)).all()) and bool(((sums - 1).abs() < 1e-4).any())


def _normalised_axis(x: torch.Tensor) -> int | None:
    axes = [d for d in range(x.dim()) if x.shape[d] > 1 and _sums_to_one(x, d)]
    return axes[-1] if axes else None


def _wrong_axis(a: torch.Tensor, e: torch.Tensor) -> str | None:
    want = _normalised_axis(e)
    if want is None or _sums_to_one(a, want):
        return None
    got = _normalised_axis(a)
    if got is None:
        return None
    return (f"your values sum to 1 along dim={got - a.dim()}, the expected ones along dim={want - a.dim()}: "
            "a softmax (or normalisation) over the wrong axis?")


def _temperature(a: torch.Tensor, e: torch.Tensor) -> str | None:
    """Softmax weights as if the scores had been multiplied by a constant c: log a = c log e + (one constant per row)."""
    axis = _normalised_axis(e)
    if axis is None or not _sums_to_one(a, axis):
        return None
    rows_a = a.movedim(axis, -1).reshape(-1, a.shape[axis])
    rows_e = e.movedim(axis, -1).reshape(-1, e.shape[axis])
    xs, ys = [], []
    for row_a, row_e in zip(rows_a, rows_e):
        keep = (row_a > 0) & (row_e > 0)
        if keep.sum() >= 2:
            x, y = row_e[keep].log(), row_a[keep].log()
            xs.append(x - x.mean())
            ys.append(y - y.mean())
    if not xs:
        return None
    x, y = torch.cat(xs), torch.cat(ys)
    if (x * x).sum() == 0:
        return None
    c = ((x * y).sum() / (x * x).sum()).item()
    if c <= 0 or abs(c - 1) < 1e-2 or (y - c * x).abs().max().item() > 1e-3 * max(y.abs().max().item(), 1.0):
        return None
    shape = "sharper" if c > 1 else "flatter"
    cause = "a missing 1/√d (or √d where 1/√d belongs)?" if "√" in _name_factor(c) else "a scale on the scores missing or applied twice?"
    return (f"your weights are the expected ones made {shape}, as if the scores had been multiplied by {_name_factor(c)} "
            f"before the softmax: {cause}")


def _mask_pattern(a: torch.Tensor, e: torch.Tensor) -> str | None:
    zeros_a, zeros_e = a == 0, e == 0
    if torch.equal(zeros_a, zeros_e) or not zeros_e.any():
        return None
    if a.dim() >= 2 and a.shape[-1] == a.shape[-2] and torch.equal(zeros_a, zeros_e.transpose(-1, -2)):
        return ("the entries that are zero in your result are the transpose of the expected ones: is the mask transposed "
                "(queries down, keys across: True where the query may see the key)?")
    if torch.equal(zeros_a, ~zeros_e):
        return "your result is zero exactly where the expected one is not: is the mask inverted (True means keep)?"
    if not zeros_a.any():
        return (f"the expected result is exactly zero in {int(zeros_e.sum())} places (masked entries), yours nowhere: "
                "is the mask applied (masked_fill with -inf before the softmax)?")
    return (f"zero in {int((zeros_a & ~zeros_e).sum())} places where the expected is not, and not zero in "
            f"{int((zeros_e & ~zeros_a).sum())} where it is: the mask marks the wrong entries?")


def _permuted(a: torch.Tensor, e: torch.Tensor) -> str | None:
    if a.numel() < 2 or a.numel() > 1_000_000 or not _close(a.flatten().sort().values, e.flatten().sort().values):
        return None
    for dim in range(a.dim()):
        size = a.shape[dim]
        if not 1 < size <= 256:
            continue
        order = []
        for i in range(size):
            match = [j for j in range(size) if j not in order and _close(a.select(dim, i), e.select(dim, j))]
            if not match:
                break
            order.append(match[0])
        if len(order) == size and order != list(range(size)):
            return (f"your slices along dim={dim - a.dim()} are the expected ones in another order "
                    f"(yours [{', '.join(map(str, range(size)))}] = expected {order}): heads, positions or batch entries mixed up?")
    return ("your result holds exactly the expected values, but in other places: a view or reshape where a transpose "
            "(or permute) was needed? (view regroups the entries in memory order, it never moves one)")


DIAGNOSES = (_transposed, _constant_factor, _constant_offset, _wrong_axis, _temperature, _mask_pattern, _permuted)


def likely_cause(actual: torch.Tensor, expected: torch.Tensor, mistakes: dict | None = None) -> str | None:
    """The first explanation the numbers support of why `actual` differs from `expected` (same shape), or None."""
    a, e = actual.detach().double(), expected.detach().double()
    for description, produced in (mistakes or {}).items():
        if isinstance(produced, torch.Tensor) and produced.shape == a.shape and _close(a, produced.detach().double()):
            return f"your result is exactly what you get if {description}."
    if not (torch.isfinite(a).all() and torch.isfinite(e).all()):
        return None
    for diagnosis in DIAGNOSES:
        cause = diagnosis(a, e)
        if cause:
            return cause
    return None


def check_close(actual, expected: torch.Tensor, name: str = "output", atol: float = 1e-5, rtol: float = 1e-4,
                hint: str | None = None, mistakes: dict | None = None) -> None:
    """Shape, dtype, finiteness, then values: the first thing that is wrong is the one reported, with its likely cause.

    mistakes: {description: the tensor that mistake would produce}; a result equal to one is named
    ("your result is exactly what you get if <description>"). hint: a line for this exercise.
    """
    check_shape(actual, expected.shape, name, hint)
    if actual.dtype != expected.dtype:
        raise AssertionError(_with_hint(f"{name}: expected dtype {expected.dtype}, got {actual.dtype}", hint))
    if not torch.isfinite(actual).all() and torch.isfinite(expected).all():
        bad = (~torch.isfinite(actual)).sum().item()
        raise AssertionError(_with_hint(
            f"{name}: {bad} entries are NaN or infinite; the expected values are all finite\n"
            "Likely cause: exp of a large score overflowing (subtract the maximum first), 0/0 in a row whose every "
            "entry is masked, or -inf - (-inf)?", hint))
    difference = (actual.detach().double() - expected.detach().double()).abs()
    tolerance = atol + rtol * expected.detach().double().abs()
    if (difference > tolerance).any():
        where = tuple(int(i) for i in torch.nonzero(difference > tolerance)[0])
        message = (
            f"{name}: values differ (relative error {relative_error(actual, expected):.2e}); "
            f"first mismatch at index {where}: got {actual[where].item():.6g}, expected {expected[where].item():.6g}"
        )
        cause = likely_cause(actual, expected, mistakes)
        raise AssertionError(_with_hint(f"{message}\nLikely cause: {cause}" if cause else message, hint))


class PredictionMissing(AssertionError):
    """A measuring cell ran before the prediction it tests was written down."""


def require_prediction(prediction, name: str = "prediction", needs_number: bool = False) -> str:
    """Stop the cell that measures until the prediction it tests is written: predict first, then measure.

    ``prediction`` is the string the student wrote in the prediction cell above (``None``, an empty
    string or only whitespace: not written yet). ``needs_number``: the question asks for a number, so
    the text must hold at least one digit. Returns the prediction, stripped, so the cell can print it
    beside what it measures.
    """
    text = prediction.strip() if isinstance(prediction, str) else ""
    if not text:
        raise PredictionMissing(
            f"Write your prediction first: in the prediction cell above, set {name} = \"...\" to what you expect, "
            "run that cell, then run this one. The measurement below would answer the question for you; "
            "a prediction written afterwards teaches nothing. A wrong prediction costs no points.")
    if needs_number and not any(character.isdigit() for character in text):
        raise PredictionMissing(
            f"Your prediction ({name} = {text!r}) holds no number: the question asks for one. A rough guess is fine "
            "(\"about 0.5\", \"10 times smaller\"); a wrong one costs no points.")
    return text


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
    # the fused kernels F.scaled_dot_product_attention dispatches to (on CPU: _scaled_dot_product_flash_attention_for_cpu)
    "scaled_dot_product_attention": {"scaled_dot_product_flash_attention", "scaled_dot_product_efficient_attention",
                                     "scaled_dot_product_cudnn_attention", "scaled_dot_product_fused_attention_overrideable"},
}


def _forbidden_operation(name: str, forbidden: set[str]) -> str | None:
    """The forbidden name that ``name`` (a torch function or an aten operation) is, or None.

    Leading underscores do not hide a name (``torch._softmax``, ``aten._softmax``), nor do the
    suffixes of its variants (``aten.nll_loss_forward``, ``aten._scaled_dot_product_flash_attention_for_cpu``).
    """
    bare = name.removeprefix("aten.").lstrip("_")
    for candidate in forbidden:
        plain = candidate.lstrip("_")
        if bare == plain or bare.startswith(plain + "_"):
            return candidate
    return None


# What autograd runs under a torch function mode: reverse mode (``torch.autograd.grad``, ``Tensor.backward``, and
# through them ``torch.func.vjp``/``grad``/``jacrev``, ``torch.autograd.functional``) and forward mode (dual tensors:
# ``torch.autograd.forward_ad``, ``torch.func.jvp``/``jacfwd``).
AUTOGRAD_FUNCTIONS = {"grad", "backward", "make_dual", "unpack_dual"}


def _autograd_at_work(func, args, kwargs) -> str | None:
    """Why the dispatched operation ``func`` is autograd's work, or None: it runs inside a backward pass (autograd's
    engine, however it was started), or it is being recorded for one (grad mode on, an input that requires grad)."""
    name = f"aten.{func.overloadpacket.__name__}"
    if torch._C._current_graph_task_id() != -1:
        return f"the operation {name} ran in a backward pass of autograd"
    if torch.is_grad_enabled():
        tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs or {})) if isinstance(a, torch.Tensor)]
        if any(tensor.requires_grad for tensor in tensors):
            return f"the operation {name} was recorded for autograd: one of its inputs requires grad"
    return None


def _watching_modes(forbidden: set[str], seen: list[str], allow_autograd: bool = True):
    """A torch function mode and a dispatch mode that raise when a forbidden operation runs,
    whatever Python name reached it (``torch.softmax``, ``Tensor.softmax``, ``nn.Softmax``,
    ``torch._softmax``, a reference captured before the test started). Each refusal is also
    appended to ``seen``, so that an answer that catches the error is still refused at the block's end.
    With ``allow_autograd=False`` they also refuse autograd at work (``_autograd_at_work``, ``AUTOGRAD_FUNCTIONS``)."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    def refuse(kind: str, name: str) -> None:
        matched = _forbidden_operation(name, forbidden)
        if matched is not None:
            message = f"{FORBIDDEN_MARKER} {matched} (the {kind} {name} ran); write it with basic tensor operations"
            seen.append(message)
            raise AssertionError(message)

    def refuse_autograd(reason: str) -> None:
        message = f"{FORBIDDEN_MARKER} autograd ({reason}); compute the gradients by hand"
        seen.append(message)
        raise AssertionError(message)

    class WatchFunctions(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", str(func))
            refuse("function", name)
            if not allow_autograd and name.lstrip("_") in AUTOGRAD_FUNCTIONS:
                refuse_autograd(f"the function {name} ran")
            return func(*args, **(kwargs or {}))

    class WatchOperations(TorchDispatchMode):
        @classmethod
        def _should_skip_dynamo(cls):
            # torch wraps a mode's __torch_dispatch__ in torch._dynamo.disable unless this says False; that import costs
            # 2 s in every kernel that checks. Nothing is lost: TorchDynamo does not compile a frame while a dispatch
            # mode like this one is active, so every operation still reaches the method below.
            return False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            refuse("operation", f"aten.{func.overloadpacket.__name__}")
            if not allow_autograd:
                reason = _autograd_at_work(func, args, kwargs)
                if reason:
                    refuse_autograd(reason)
            return func(*args, **(kwargs or {}))

    return WatchFunctions(), WatchOperations()


class forbidden_calls:
    """Within this block, running one of the given functions raises an AssertionError naming it.

    Used by hidden tests to check that an exercise does not hand its work to the built-in it
    asks the student to write, e.g. ``forbidden_calls((torch, "softmax"), (torch.Tensor, "softmax"))``.
    Two guards: the named attributes are replaced by functions that refuse, and what actually
    runs is watched (a torch function mode and a dispatch mode), so another spelling of the same
    built-in (``torch._softmax``, ``nn.Softmax(dim)(x)``, ``operator.attrgetter``) is refused too.
    A refusal the answer catches (``try: ... except AssertionError``) is raised again when the
    block ends: the test saw the built-in run, whatever the answer did with the error.

    The modes are thread-local and live in the kernel: code that pops them
    (``torch.overrides._pop_mode_temporarily``, ``_disable_current_modes``) or runs the built-in in
    another thread is not seen here; the grader's integrity pass flags those names in an answer
    and counts them as a forbidden call (grading/config.py, ``count_escapes``).

    ``allow_autograd=False``: an exercise that asks for a backward pass by hand refuses autograd too,
    by whatever door: a graph recorded (an operation on a tensor that requires grad, grad mode on),
    a backward pass run (``torch.autograd.grad``, ``.backward()``, ``torch.func.vjp``, a node's
    ``grad_fn`` called by hand), or forward mode (dual tensors, ``torch.func.jvp``). The inputs a
    test passes in must then not require grad.
    """

    def __init__(self, *targets, allow_autograd: bool = True):
        self.targets = targets
        self.allow_autograd = allow_autograd
        self.saved = []
        self.modes = []
        self.seen: list[str] = []

    def __enter__(self):
        names = set()
        self.seen = []
        for owner, name in self.targets:
            original = getattr(owner, name)
            self.saved.append((owner, name, original))
            label = f"{getattr(owner, '__name__', owner)}.{name}"
            names.add(label.rsplit(".", 2)[-2] + ".forward" if name == "forward" else name)

            def refuse(*args, _name=label, **kwargs):
                message = f"{FORBIDDEN_MARKER} {_name}; write it with basic tensor operations"
                self.seen.append(message)
                raise AssertionError(message)

            setattr(owner, name, refuse)
        for name in list(names):
            names |= _ALSO_FORBIDDEN.get(name, set())
        names = {name for name in names if not name.endswith(".forward") and not name[:1].isupper()}
        self.modes = list(_watching_modes(names, self.seen, self.allow_autograd))
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
        if self.seen and exc_info[0] is None:  # refused, and the answer caught the error: the test still fails
            raise AssertionError(self.seen[0])
        return False


def numerical_gradient(function, x: torch.Tensor, grad_output: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """The gradient of L(x) = sum(function(x) * grad_output) with respect to ``x``, by central differences.

    Entry by entry: nudge x_i by +eps and by -eps, and  dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps).
    The error of this estimate shrinks as eps**2 (the x_i**2 terms of the Taylor series cancel); rounding adds
    about 1e-16 / eps in float64, so eps = 1e-6 leaves about 1e-10 of each: use float64, small inputs (two calls
    of ``function`` per entry of x) and a tolerance near 1e-6. ``grad_output`` (the shape of function(x)) plays the
    gradient arriving from above: L is the loss whose gradient a backward pass given ``grad_output`` returns.
    """
    x = x.detach().clone()  # nudged in place, entry by entry
    gradient = torch.zeros_like(x)
    entries, slopes = x.view(-1), gradient.view(-1)
    for i in range(entries.numel()):
        kept = entries[i].item()
        entries[i] = kept + eps
        above = (function(x) * grad_output).sum()
        entries[i] = kept - eps
        below = (function(x) * grad_output).sum()
        entries[i] = kept
        slopes[i] = (above - below) / (2 * eps)
    return gradient


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


# ---------------------------------------------------------------------------------------------
# Results handed to the grader. When a notebook is graded, the hidden part of each test cell calls
# the student's functions on inputs it chooses and hands what they return to ``report``; nothing
# is compared in the student's process. The grader runs the same cells with the reference
# solution, and compares, in its own process, each result with the reference's result of the same
# name (tolerances and bounds taken from the reference run, never from the student's).
# Outside grading (no REPORTS_ENVIRONMENT variable) ``report`` does nothing.



def _as_array(value):
    import numpy as np

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.numpy()
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"report: a tensor, an array, a number, a bool or a string, not {type(value).__name__}")
    return array


def report(name: str, value, *, atol: float = 1e-5, rtol: float = 1e-4, bound: tuple | None = None, targets=None,
           metric: str | None = None) -> None:
    """Hand ``value`` to the grader under ``name`` (unique within the notebook).

    Without ``bound`` the grader compares it with the reference solution's value of the same name:
    same shape and dtype, equal within atol + rtol * |reference| (strings and bools exactly).
    With ``bound=(relation, limit)``, e.g. ``("<=", 0.5)``, it checks the relation instead (a loss
    reached, an accuracy): for results a student may legitimately get differently.
    With ``targets`` as well, ``value`` is predictions (one row per example) and the grader computes
    the bound's number itself: the fraction of rows equal to the reference run's ``targets`` (a
    trained model's accuracy on a seeded held-out set, which no number the kernel states replaces).
    With ``metric`` instead, the grader measures ``value`` itself (grading/metrics.py): e.g. a trained
    model's weights, from which it rebuilds the model and computes its held-out loss.
    """
    import os
    from pathlib import Path

    import numpy as np

    folder = os.environ.get(REPORTS_ENVIRONMENT)
    if not folder:
        return
    if bound is not None and (len(bound) != 2 or bound[0] not in RELATIONS):
        raise ValueError(f"report: bound must be (relation, limit) with relation in {RELATIONS}")
    relation, limit = bound if bound is not None else ("", 0.0)
    path = Path(folder) / report_file_name(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if targets is None else {"targets": _as_array(targets)}
    if metric:
        extra["metric"] = np.array(metric)
    np.savez(path, name=np.array(name), value=_as_array(value), atol=np.array(float(atol)), rtol=np.array(float(rtol)),
             relation=np.array(relation), limit=np.array(float(limit)), **extra)
