"""``python -m grading check <notebook>``: a student grades their own notebook exactly as the grader will.

The same sandbox and settings, and the same verdicts reached outside the kernel: the hidden
tests' results are compared with the reference run's (grading/reports.py), whatever the
notebook did to the checks in its own kernel.
"""

import subprocess
import sys

import nbformat

from grading.assignments import REPO, nbgrader_notebook

ASSIGNMENT = "ch03_attention"
CHEAT = (
    "def masked_softmax(scores, mask=None, dim=-1):\n    return scores\n\n"
    "torch.allclose = lambda *a, **k: True\ncheck_close = lambda *a, **k: None\n"
)


def test_self_check_reports_each_test_as_the_grader_will(tmp_path):
    notebook = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    reference = {c.metadata["nbgrader"]["grade_id"]: c.source
                 for c in nbgrader_notebook(REPO / "solutions" / f"{ASSIGNMENT}.py").cells if c.metadata["nbgrader"]["solution"]}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = CHEAT if grade_id == "masked_softmax" else reference[grade_id]
    path = tmp_path / f"{ASSIGNMENT}.ipynb"
    nbformat.write(notebook, path)
    result = subprocess.run([sys.executable, "-m", "grading", "check", str(path)], cwd=REPO, capture_output=True, text=True)
    output = result.stdout
    assert result.returncode == 0, output + result.stderr[-3000:]
    assert "visible and hidden tests" in output
    assert "masks_hidden (2 points): passed" in output, output
    assert "masked_softmax_hidden (2 points): failed: ResultDiffers: masked_softmax/hidden/" in output, output
    assert "attention_hidden (3 points): failed: ResultDiffers" in output, output
    assert "me: 3 / 12" in output and "REVIEW" in output, output
