"""Numbers the grader computes itself from what a hidden test reported, for a bound (``report(..., metric=...)``).

A report with a bound usually carries the number to bound (``value`` itself) or predictions the
grader scores against the reference run's targets (an accuracy). A metric goes further: the report
carries a trained model's *weights*, and the grader rebuilds the model with the repository's own
code and measures it. The measurement imports torch, which the grader's process never does, so it
runs in a child process of the trusted Python (no student code runs there: the weights are numbers
read by ``grading.reports.read_report``, handed over as an .npy file).

    python -m grading.metrics <metric> <weights.npy>      prints the number, or "error: <why>"
"""

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# metric -> (module, function): the function takes the reported array and returns a float, or raises ValueError
METRICS = {
    # chapter 7's training-loop exercise: a GPT's weights -> its held-out loss, on the relabelled text or the text itself
    "gpt_held_out_loss": ("course.lm_exercise", "held_out_loss"),
    "gpt_held_out_loss_plain": ("course.lm_exercise", "held_out_loss_plain"),
    # chapter 6's sorter trained by the student's loop: its weights -> the share of held-out sequences it sorts exactly,
    # the digits relabelled (the hidden test's training) or not (the visible test's)
    "sorter_accuracy": ("course.digit_sorter", "held_out_accuracy"),
    "sorter_accuracy_plain": ("course.digit_sorter", "held_out_accuracy_plain"),
    # chapter 2's training-loop exercise: the attention model's weights -> its exact match on held-out strings, and
    # the share of output steps whose largest attention weight is on the mirrored input
    "reverser_exact_match": ("course.reversal_exercise", "held_out_exact_match"),
    "reverser_anti_diagonal": ("course.reversal_exercise", "held_out_anti_diagonal"),
}
TIMEOUT_S = 300
ROOT = Path(__file__).resolve().parent.parent  # where grading/ and course/ are (the repository, or a student kit)


def compute(metric: str, value: np.ndarray) -> float | str:
    """The metric of ``value``, or a sentence saying why it could not be computed."""
    if metric not in METRICS:
        return f"unknown metric {metric!r}"
    with tempfile.TemporaryDirectory(prefix="grading-metric-") as folder:
        path = Path(folder) / "value.npy"
        np.save(path, value, allow_pickle=False)
        try:
            result = subprocess.run([sys.executable, "-m", "grading.metrics", metric, str(path)], capture_output=True,
                                    text=True, timeout=TIMEOUT_S, cwd=ROOT, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
        except subprocess.TimeoutExpired:
            return f"measuring it took longer than {TIMEOUT_S} s"
    line = (result.stdout.strip().splitlines() or [""])[-1]
    if result.returncode == 0 and not line.startswith("error:"):
        try:
            return float(line)
        except ValueError:
            pass
    return line.removeprefix("error: ") if line.startswith("error:") else f"the measurement failed ({result.stderr.strip()[-300:]})"


def main(argv: list[str]) -> int:
    metric, path = argv
    module_name, function_name = METRICS[metric]
    import importlib

    value = np.load(path, allow_pickle=False)
    try:
        number = getattr(importlib.import_module(module_name), function_name)(value)
    except ValueError as error:
        print(f"error: {error}")
        return 0
    print(repr(float(number)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
