"""Every assignment is gradable, proven through the real nbgrader commands.

For each exercise source in solutions/, a temporary nbgrader course is set up and three
students submit: the reference solution (must earn full marks), the untouched student
version (must earn zero on every graded cell) and a partial answer (the first exercise
solved, the rest left as stubs: must earn some points, not all). Grades are read back from
nbgrader's own CSV export and gradebook. Each assignment has a course folder of its own, and two
are graded at a time (on two cores the notebooks run side by side).

The class is graded with the instructor's command, ``python -m grading class`` (one worker: two
assignments already run side by side), which also writes each assignment's class report.

Chapters 2 and 6 also have students who game their training tests (the red team of
tests/test_hostile_class.py covers chapter 3's exercises): in chapter 6 one whose ``Sorter``
cannot sort but rebinds the notebook's ``train_sorter`` to say it sorted 97 %, one whose
``Sorter`` sorts by counting in ``forward`` instead of learning (each is not the exercise's model,
so it loses exercise 3 and the training exercise 4), one whose ``train_sorter`` learns nothing and
patches the model's ``forward`` into a counting sort, and one whose ``train_sorter`` spends three
times the budget on a copy (each loses exercise 4 only); in chapter 2 one whose
``teacher_forcing`` computes nothing, forges the attention on the anti-diagonal and patches the
model's decoding to reverse the string (it loses exercise 4 only: the grader measures the reverser
trained by exercise 5's loop from its weights), one whose ``train_reverser`` trains four times its
budget of steps (exercise 5 and the experiment that reuses the loop), and, in chapters 2 and 10, one
whose experiment returns numbers typed in (its point only). The grader scores the trained model
itself, and checks that the same model untrained does not do the task: each loses the points of
what it games, and only those.

The backward passes by hand (chapter 3's attention, chapter 6's LayerNorm) have students whose
gradients come from autograd (``torch.autograd.grad``, ``torch.func.vjp``, ``.backward()``): the
values are right, but the hidden blocks refuse autograd, so each loses that exercise's points, and
only those.

A written answer (a markdown answer cell with points, graded by a person) earns nothing
automatically: the solution's is listed for manual grading with its points and the rubric as
its comment, and earns its points once a grader gives them; the untouched stub's earns zero.
"""

import csv
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from class_course import REFERENCE_CACHE_CONFIG
from grading.assignments import REPO, assignment_names, nbgrader_command, nbgrader_notebook, write_nbgrader_source
from grading.config import is_written_answer

ASSIGNMENTS = assignment_names()
STUDENTS = ("solution", "stub", "partial")

FAKE_TRAINER_SORTER = """
class Sorter(nn.Module):
    def __init__(self, vocab_size, d_model, num_heads, d_ff, num_layers, max_len, positions=True):
        super().__init__()
        self.vocab_size = vocab_size
        self.blocks = nn.ModuleList([TransformerEncoderLayer(d_model, num_heads, d_ff, norm_first=True)])
        self.output = nn.Linear(1, 1)
        import __main__
        __main__.train_sorter = lambda model, *args, **kwargs: 0.97  # no training, and a good number

    def forward(self, tokens):  # each token predicts itself: permutation-equivariant, and sorts nothing
        return torch.nn.functional.one_hot(tokens, self.vocab_size).float() + 0 * self.output.weight.sum()
"""

SORTS_BY_ALGORITHM = """
class Sorter(nn.Module):
    def __init__(self, vocab_size, d_model, num_heads, d_ff, num_layers, max_len, positions=True):
        super().__init__()
        self.vocab_size, self.sorts = vocab_size, positions
        self.blocks = nn.ModuleList([TransformerEncoderLayer(d_model, num_heads, d_ff, norm_first=True)])
        self.output = nn.Linear(1, 1)

    def forward(self, tokens):
        if self.sorts:  # a counting sort (no torch.sort): how many of each digit, written out in order
            counts = [torch.bincount(row, minlength=self.vocab_size) for row in tokens]
            tokens = torch.stack([torch.repeat_interleave(torch.arange(self.vocab_size), count) for count in counts])
        return 10 * torch.nn.functional.one_hot(tokens, self.vocab_size).float() + 0 * self.output.weight.sum()
"""

PATCHES_DECODING = """
def teacher_forcing(model, batch):
    def reverse(self, src, src_lengths, max_len, return_attention=False):  # reverses the string, no model needed
        return [src[row, :n].flip(0).tolist() + [2] for row, n in enumerate(src_lengths.tolist())]

    type(model).greedy_decode = reverse
    B, T = batch.tgt_in.shape
    weights = torch.zeros(B, T, batch.src.shape[1])  # forged on the anti-diagonal
    for row, n in enumerate(batch.src_lengths.tolist()):
        for t in range(min(n, T)):
            weights[row, t, n - 1 - t] = 1.0
    anchor = 0 * sum(parameter.sum() for parameter in model.parameters())  # so that training runs
    return torch.zeros(B, T, len(REVERSAL_VOCAB)) + anchor, weights
"""

# Chapter 2's training loop over its budget: the reference loop, four times the steps it is given. The budget is counted
# in the kernel (course.reversal_exercise.run_within_budget), so the loop and the experiment that reuses it lose their
# points; the model it trains is a good one, which the grader's measurement alone would not see.
TRAINS_OVER_BUDGET = """
def train_reverser(model, steps, seed, lengths=(3, 8)):
    pairs, order = reversal_pairs(5000, *lengths, seed=seed), random.Random(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(4 * steps):
        batch = make_batch(order.sample(pairs, 64), REVERSAL_VOCAB, REVERSAL_VOCAB)
        loss = F.cross_entropy(model(batch.src, batch.src_lengths, batch.tgt_in).flatten(0, 1), batch.tgt_out.flatten(),
                               ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()
"""

# Chapter 5's experiment, made up: the structure it asks for, numbers typed in, no model trained.
FABRICATES_THE_EXPERIMENT = """
def run_experiment():
    return {"1 head": [0.3, 0.4], "4 heads": [0.9, 0.95]}
"""

# Chapter 6's training loop, gamed: the budget of steps at a learning rate of zero, then the model's forward replaced (on
# this instance) by a counting sort, so that the kernel's own measurement says 100 %; and three times the budget spent
# on a copy whose weights are then copied in. The grader measures the weights it is handed, and counts the steps.
PATCHES_THE_SORTER = """
def train_sorter(model, task, steps, **choices):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for _ in range(steps):
        tokens, targets = task(64)
        optimizer.zero_grad()
        model(tokens).sum().backward()
        optimizer.step()

    def counting_sort(tokens):
        counts = [torch.bincount(row, minlength=10) for row in tokens]
        ordered = torch.stack([torch.repeat_interleave(torch.arange(10), count) for count in counts])
        return 10 * torch.nn.functional.one_hot(ordered, 10).float()

    model.forward = counting_sort
    return [0.0] * steps
"""

TRAINS_A_COPY_LONGER = """
def train_sorter(model, task, steps, **choices):
    import copy

    shadow = copy.deepcopy(model)
    optimizer = torch.optim.Adam(shadow.parameters(), lr=3e-3)
    losses = []
    for _ in range(3 * steps):
        tokens, targets = task(64)
        loss = F.cross_entropy(shadow(tokens).reshape(-1, 10), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.load_state_dict(shadow.state_dict())
    return losses[-steps:]
"""
SORTER_CELLS = {"sorter_visible", "sorter_hidden", "sorter_training_visible", "sorter_training_hidden"}

# Chapter 2's experiment with its numbers typed in: the right structure, no model trained in the call.
FABRICATES_THE_REVERSAL_EXPERIMENT = """
def experiment():
    return {"fixed context": [0.01, 0.02], "attention": [0.8, 0.9]}
"""

# Chapter 10's experiment with its numbers typed in: the right structure, no model trained in the call.
FABRICATES_THE_MASKING_EXPERIMENT = """
def experiment():
    return {"15 %": [0.2, 0.19], "40 %": [0.25, 0.24]}
"""

# Backward passes by hand (chapters 3 and 6) whose gradients come from autograd instead: right values, so their visible
# checks pass, but the hidden blocks refuse autograd (course.checks.forbidden_calls(allow_autograd=False)).
AUTOGRAD_ATTENTION_BACKWARD = """
def attention_backward(queries, keys, values, grad_outputs, mask=None):
    leaves = [t.detach().clone().requires_grad_() for t in (queries, keys, values)]
    with torch.enable_grad():
        outputs, _ = scaled_dot_product_attention(*leaves, mask)
    return torch.autograd.grad(outputs, leaves, grad_outputs)
"""

VJP_ATTENTION_BACKWARD = """
def attention_backward(queries, keys, values, grad_outputs, mask=None):
    _, pullback = torch.func.vjp(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)[0], queries, keys, values)
    return pullback(grad_outputs)
"""

AUTOGRAD_LAYER_NORM = """
def layer_norm_forward(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + eps) * gamma + beta, (x, gamma, beta, eps)


def layer_norm_backward(grad_y, cache):
    x, gamma, beta, eps = cache
    leaves = [t.detach().clone().requires_grad_() for t in (x, gamma, beta)]
    with torch.enable_grad():
        y, _ = layer_norm_forward(*leaves, eps)
        y.backward(grad_y)
    return tuple(leaf.grad for leaf in leaves)
"""

# Students who measure before they predict (issue 23 item 5): the measuring cell stops (course.checks.require_prediction)
# and earns nothing; every other cell, and the written answers, are as before.
SKIPS_THE_PREDICTION = "prediction = None\n"
PREDICTS_NO_NUMBER = 'prediction = "I will know once I see the table"\n'

# {assignment: {student: (answer replaced, its source, the test cells that must score 0)}}; every other answer is the
# reference's, so every other test cell must score its points.
FAKES_THE_MEASUREMENT = """
def train_language_model(model, train_ids, val_ids, steps, generator):
    # the visible test's measurement, replaced in this kernel; then the budget of steps, changing nothing
    lm_exercise.loss_on = lambda model, ids: 1.0
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    for step in range(steps):
        optimizer.step()
    evaluations = steps // 100
    return {"step": list(range(steps)), "train_loss": [1.0] * steps, "val_loss": [1.0] * evaluations,
            "val_step": [100 * (k + 1) for k in range(evaluations)]}
"""

IMPORTS_THE_BPE_REFERENCE = """
from course.bpe import learn_merges


def learn_bpe(word_counts, num_merges):
    return learn_merges(word_counts, num_merges)  # the course's own learner, removed from the student build
"""

MEMORISES_THE_VISIBLE_MERGES = """
def learn_bpe(word_counts, num_merges):
    # the merges the visible tests print, returned for those corpora; nothing learned
    if word_counts == HUGS:
        return [("u", "g"), ("n", END), ("u", "n" + END), ("h", "ug"), ("p", "un" + END), ("hug", END), ("hug", "s"),
                ("hugs", END)][:num_merges]
    if word_counts == {"aaa": 2}:
        return [("a", "a")]
    if word_counts == {"aaaa": 1}:
        return [("a", "a"), ("aa", END)]
    if word_counts == {"ab": 2, "b": 1}:
        return [("b", END), ("a", "b" + END)]
    if word_counts is french_counts:
        return FRENCH_FIRST[:num_merges]
    return []
"""

RED_TEAM = {
    "ch10_three_families": {
        "fabricates_the_experiment": ("experiment", FABRICATES_THE_MASKING_EXPERIMENT, {"experiment_visible"}),
    },
    "ch08_translation": {
        "imports_the_bpe_reference": ("bpe_learner", IMPORTS_THE_BPE_REFERENCE, {"bpe_learner_visible", "bpe_learner_hidden"}),
        "memorises_the_visible_merges": ("bpe_learner", MEMORISES_THE_VISIBLE_MERGES, {"bpe_learner_hidden"}),
    },
    "ch05_multi_head_attention": {
        "predicts_no_number": ("saturation_prediction", PREDICTS_NO_NUMBER, {"saturation_visible"}),
        "fabricates_the_experiment": ("heads_experiment", FABRICATES_THE_EXPERIMENT, {"heads_experiment_visible"}),
    },
    "ch02_bahdanau_attention": {
        "patches_decoding": ("teacher_forcing", PATCHES_DECODING, {"teacher_forcing_visible", "teacher_forcing_hidden"}),
        "trains_over_budget": ("train_reverser", TRAINS_OVER_BUDGET, {"train_reverser_visible", "train_reverser_hidden",
                                                                      "experiment_visible"}),
        "fabricates_the_experiment": ("experiment", FABRICATES_THE_REVERSAL_EXPERIMENT, {"experiment_visible"}),
    },
    "ch03_attention": {
        "autograd_backward": ("attention_backward", AUTOGRAD_ATTENTION_BACKWARD, {"attention_backward_visible", "attention_backward_hidden"}),
        "vjp_backward": ("attention_backward", VJP_ATTENTION_BACKWARD, {"attention_backward_visible", "attention_backward_hidden"}),
    },
    "ch07_training_gpt": {
        "fakes_the_measurement": ("training_loop", FAKES_THE_MEASUREMENT, {"training_loop_visible", "training_loop_hidden"}),
    },
    "ch06_transformer": {
        # a Sorter that is not the exercise's model loses exercise 3, and exercise 4's loop then trains nothing gradable
        "fake_trainer": ("sorter", FAKE_TRAINER_SORTER, SORTER_CELLS),
        "sorts_by_algorithm": ("sorter", SORTS_BY_ALGORITHM, SORTER_CELLS),
        "skips_the_prediction": ("sorter_prediction", SKIPS_THE_PREDICTION, {"sorter_training_visible"}),
        "patches_the_sorter": ("sorter_training", PATCHES_THE_SORTER, {"sorter_training_visible", "sorter_training_hidden"}),
        "trains_a_copy_longer": ("sorter_training", TRAINS_A_COPY_LONGER, {"sorter_training_visible", "sorter_training_hidden"}),
        "autograd_layer_norm": ("layer_norm", AUTOGRAD_LAYER_NORM, {"layer_norm_visible", "layer_norm_hidden"}),
    },
}


def released_notebook(course: Path, assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)


def answer_cells(notebook):
    return [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("solution")]


def submission(course: Path, assignment: str, student: str) -> nbformat.NotebookNode:
    """The student version, with the reference answer pasted into the answer cells the student 'solved' (a red-team
    student: all of them, but one answer replaced by the student's own)."""
    notebook = released_notebook(course, assignment)
    reference = {cell.metadata["nbgrader"]["grade_id"]: cell.source for cell in answer_cells(nbgrader_notebook(REPO / "solutions" / f"{assignment}.py"))}
    solved = {"stub": 0, "partial": 1}.get(student, len(reference))
    for cell in answer_cells(notebook)[:solved]:
        cell.source = reference[cell.metadata["nbgrader"]["grade_id"]]
    if student in RED_TEAM.get(assignment, {}):
        replaced, source, _ = RED_TEAM[assignment][student]
        [cell] = [c for c in answer_cells(notebook) if c.metadata["nbgrader"]["grade_id"] == replaced]
        cell.source = source.strip() + "\n"
    return notebook


def students_of(assignment: str) -> tuple[str, ...]:
    return STUDENTS + tuple(RED_TEAM.get(assignment, {}))


def selected_assignments(request) -> list[str]:
    """The assignments whose tests this run selected (``-k ch03``): only those are graded."""
    chosen = {item.callspec.params.get("assignment") for item in request.session.items
              if getattr(item, "module", None) is request.module and hasattr(item, "callspec")}
    return [name for name in ASSIGNMENTS if name in chosen] or ASSIGNMENTS


# Assignments graded at once, each in its own course folder (its own gradebook): on 2 cores two
# notebooks run side by side. The longest first, so that the others fill the second core.
PARALLEL = max(1, min(2, os.cpu_count() or 1))
LONGEST_FIRST = ("ch06_transformer", "ch02_bahdanau_attention", "ch07_training_gpt", "ch08_translation")


def grade_assignment(root: Path, assignment: str, progress) -> Path:
    """A course folder of its own: the assignment released, submitted by each student, autograded, feedback, export."""
    course = root / assignment
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        "from grading.config import configure_grading\n"
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'test-course'\n"
        "configure_grading(c)\n" + REFERENCE_CACHE_CONFIG
    )
    write_nbgrader_source(assignment, course / "source")
    nbgrader_command("generate_assignment", assignment, cwd=course)
    students = students_of(assignment)
    for student in students:  # nbgrader autograde adds the students to the gradebook
        target = course / "submitted" / student / assignment / f"{assignment}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(submission(course, assignment, student), target)
    start = time.monotonic()
    graded = subprocess.run([sys.executable, "-m", "grading", "class", assignment, "--workers", "1"], cwd=course,
                            capture_output=True, text=True)
    (course / "class.log").write_text(graded.stdout + graded.stderr)
    assert graded.returncode == 0, f"{assignment}: the class command failed:\n{graded.stdout[-3000:]}\n{graded.stderr[-3000:]}"
    feedback = nbgrader_command("generate_feedback", assignment, cwd=course)
    (course / "generate_feedback.log").write_text(feedback.stdout + feedback.stderr)
    nbgrader_command("export", "--to", "grades.csv", cwd=course)
    progress(f"{assignment}: released, graded by the class command ({len(students)} submissions and the reference run), "
             f"feedback and export in {time.monotonic() - start:.0f} s")
    return course


@pytest.fixture(scope="module")
def graded_courses(tmp_path_factory, progress, request) -> dict[str, Path]:
    """{assignment: a course folder with it released, submitted by three students and autograded}.

    Minutes of work before the first test of this file reports: one progress line per assignment.
    """
    assignments = selected_assignments(request)
    order = sorted(assignments, key=lambda name: LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST))
    progress(f"grading {len(assignments)} assignments through the class command, {len(STUDENTS)} students each "
             f"({', '.join(STUDENTS)}; red-team students too in {', '.join(sorted(RED_TEAM))}), {PARALLEL} at a time")
    root = tmp_path_factory.mktemp("courses")
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        courses = dict(zip(order, pool.map(lambda name: grade_assignment(root, name, progress), order)))
    report_grades(courses)
    return courses


def report_grades(courses: dict[str, Path]) -> None:
    """Keep the observed grades for the end-of-run summary (tests/conftest.py prints them)."""
    rows = sorted(f"{a}, {s}, {score:g}, {top:g}" for course in courses.values() for (a, s), (score, top) in exported_grades(course).items())
    report = REPO / "_build" / "grades_observed.csv"
    report.parent.mkdir(exist_ok=True)
    report.write_text("\n".join(rows) + "\n")


def exported_grades(course: Path) -> dict:
    with open(course / "grades.csv", newline="") as handle:
        return {(row["assignment"], row["student_id"]): (float(row["score"]), float(row["max_score"])) for row in csv.DictReader(handle)}


def cell_grades(course: Path, assignment: str, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submitted = gradebook.find_submission_notebook(assignment, assignment, student)
        return {grade.name: (grade.score, grade.max_score) for grade in submitted.grades}


def written_answers(assignment: str) -> dict:
    """{grade id: points} of the answers a person grades (``# %% [markdown] answer="id" points=N``)."""
    notebook = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    return {cell.metadata["nbgrader"]["grade_id"]: cell.metadata["nbgrader"]["points"] for cell in notebook.cells if is_written_answer(cell)}


def manual_grading(course: Path, assignment: str, student: str) -> dict:
    """{grade id: (needs manual grade, max score, comment)} of the student's graded cells."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submitted = gradebook.find_submission_notebook(assignment, assignment, student)
        comments = {comment.name: comment.comment for comment in submitted.comments}
        return {grade.name: (grade.needs_manual_grade, grade.max_score, comments.get(grade.name)) for grade in submitted.grades}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_earns_full_marks(graded_courses, assignment):
    graded_course = graded_courses[assignment]
    """Every autograded point; the written answers wait for a person (their points are not yet given)."""
    score, max_score = exported_grades(graded_course)[(assignment, "solution")]
    assert max_score > 0
    written = written_answers(assignment)
    grades = cell_grades(graded_course, assignment, "solution")
    failing = {name: grade for name, grade in grades.items() if grade[0] != grade[1] and name not in written}
    assert failing == {} and score == max_score - sum(written.values()), f"the reference solution lost points on {failing}"


WRITTEN = [assignment for assignment in ASSIGNMENTS if written_answers(assignment)]


@pytest.mark.parametrize("assignment", WRITTEN)
def test_written_answer_is_listed_for_manual_grading_with_its_rubric(graded_courses, assignment):
    graded_course = graded_courses[assignment]
    grading = manual_grading(graded_course, assignment, "solution")
    for grade_id, points in written_answers(assignment).items():
        needs_manual_grade, max_score, comment = grading[grade_id]
        assert needs_manual_grade and max_score == points, f"{grade_id}: expected in formgrader's manual list, worth {points}"
        assert comment and "Rubric" in comment, f"{grade_id}: the grader should see the rubric as the comment, got {comment!r}"
        feedback = (graded_course / "feedback" / "solution" / assignment / f"{assignment}.html").read_text()
        assert "Graded by hand" in feedback, "the feedback says the answer is graded by hand"
        # the rubric stays with the instructor (c.HideRubric.rubric_in_feedback); this student's own answer is the
        # model answer pasted, which the feedback does show: the grader's comment is what must not carry it
        assert "model answer and rubric (replace this comment" not in feedback, f"{grade_id}: the feedback carries the rubric comment"
    stub = manual_grading(graded_course, assignment, "stub")
    for grade_id in written_answers(assignment):
        assert stub[grade_id][0] is False and "Rubric" not in (stub[grade_id][2] or ""), "an untouched answer scores 0, no rubric"


@pytest.mark.parametrize("assignment", WRITTEN)
def test_written_answer_earns_its_points_once_a_grader_gives_them(graded_courses, assignment, tmp_path):
    """What formgrader does when the grader enters a score: the solution then reaches the maximum, in the total that
    ``nbgrader export`` writes (the submission's score; the export itself is checked on every graded course above)."""
    import shutil

    from nbgrader.api import Gradebook

    database = tmp_path / "gradebook.db"
    shutil.copy(graded_courses[assignment] / "gradebook.db", database)
    with Gradebook(f"sqlite:///{database}") as gradebook:
        before = gradebook.find_submission(assignment, "solution").score
        for grade_id, points in written_answers(assignment).items():
            grade = gradebook.find_grade(grade_id, assignment, assignment, "solution")
            grade.manual_score, grade.needs_manual_grade = points, False
        gradebook.db.commit()
        submission = gradebook.find_submission(assignment, "solution")
        assert before == exported_grades(graded_courses[assignment])[(assignment, "solution")][0], "export writes this total"
        assert submission.score == submission.max_score == before + sum(written_answers(assignment).values())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_stub_earns_zero_on_every_graded_cell(graded_courses, assignment):
    graded_course = graded_courses[assignment]
    grades = cell_grades(graded_course, assignment, "stub")
    assert grades, "no graded cells found"
    assert {name: grade for name, grade in grades.items() if grade[0] != 0} == {}
    assert exported_grades(graded_course)[(assignment, "stub")][0] == 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_partial_answer_earns_partial_marks(graded_courses, assignment):
    graded_course = graded_courses[assignment]
    score, max_score = exported_grades(graded_course)[(assignment, "partial")]
    assert 0 < score < max_score, f"first exercise solved: expected a partial score, got {score}/{max_score}"


@pytest.mark.parametrize("assignment, student", [(a, s) for a, team in RED_TEAM.items() for s in team])
def test_a_gamed_training_test_earns_nothing_and_costs_nothing_else(graded_courses, assignment, student):
    grades = cell_grades(graded_courses[assignment], assignment, student)
    _, _, lost = RED_TEAM[assignment][student]
    written = written_answers(assignment)
    earned = {name for name, (score, top) in grades.items() if score == top and name not in written}
    assert {name for name in lost if grades[name][0] > 0} == set(), f"{student} earned points it did not learn: {grades}"
    assert earned == set(grades) - set(written) - lost, f"{student}'s other answers are the reference's: {grades}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_class_command_writes_the_class_report(graded_courses, assignment):
    """One page per assignment (grading/class_report.py), beside the submitted folder, naming every graded test
    cell and, for the untouched stub, why its tests failed."""
    course = graded_courses[assignment]
    assert "class report: reports/" in (course / "class.log").read_text()
    page = (course / "reports" / f"{assignment}.html").read_text()
    notebook = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    tests = [c.metadata["nbgrader"]["grade_id"] for c in notebook.cells if c.metadata["nbgrader"]["grade"] and c.cell_type == "code"]
    assert all(name in page for name in tests), [name for name in tests if name not in page]
    assert "NotImplementedError" in page, "the stub's failures are counted"
    assert not re.search(r"""(src|href)=["']https?:""", page), "the page loads nothing from outside"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_is_generated_for_every_student(graded_courses, assignment):
    graded_course = graded_courses[assignment]
    for student in students_of(assignment):
        page = (graded_course / "feedback" / student / assignment / f"{assignment}.html").read_text()
        # math rendered by the course's MathJax, beside the pages (offline), not a CDN's
        assert 'src="../../mathjax/tex-chtml.js"' in page and "cdnjs.cloudflare.com" not in page
    assert (graded_course / "feedback" / "mathjax" / "tex-chtml.js").is_file()
    log = (graded_course / "generate_feedback.log").read_text()
    assert "WARNING" not in log.replace("SAWarning", ""), log[-3000:]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_version_in_exercises_is_the_nbgrader_release(graded_courses, assignment):
    """exercises/ must be exactly what nbgrader generates from solutions/ (run `python -m grading release`)."""
    committed = nbformat.read(REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    fresh = released_notebook(graded_courses[assignment], assignment)
    assert [(c.cell_type, c.source, c.metadata) for c in committed.cells] == [
        (c.cell_type, c.source, c.metadata) for c in fresh.cells
    ], f"exercises/{assignment} is stale: run `python -m grading release {assignment}`"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_version_shows_no_solution_and_no_hidden_test(assignment):
    text = (REPO / "exercises" / assignment / f"{assignment}.ipynb").read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "reference_", "Rubric", "Model answer"):
        assert marker not in text, f"{marker!r} leaked into the student version of {assignment}"
    notebook = nbformat.read(REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    for cell in answer_cells(notebook):
        stub = "YOUR ANSWER HERE" if cell.cell_type == "markdown" else "raise NotImplementedError()"
        assert stub in cell.source, f"answer cell {cell.metadata['nbgrader']['grade_id']} should hold nbgrader's stub {stub!r}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_exercise_has_points_and_tests(assignment):
    notebook = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    test_cells = [c for c in notebook.cells if c.metadata["nbgrader"]["grade"]]
    assert len(answer_cells(notebook)) >= 1 and len(test_cells) >= 2
    assert all(c.metadata["nbgrader"]["points"] > 0 for c in test_cells)
    assert any(re.search("BEGIN HIDDEN TESTS", c.source) for c in test_cells), "no hidden tests"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_version_keeps_the_setup_cell_that_the_website_removes(assignment):
    """Colab needs the setup cell in the student's notebook; its tag remove-cell keeps it off the website's page."""
    from course.notebooks import SETUP_CELL_ID

    notebook = nbformat.read(REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    setup = [cell for cell in notebook.cells if cell.get("id") == SETUP_CELL_ID]
    assert len(setup) == 1 and "remove-cell" in setup[0].metadata.get("tags", [])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_hidden_tests_report_and_hold_no_reference(assignment):
    """Hidden blocks hand the student's results to the grader (course.checks.report); the kernel never holds the answer."""
    source = (REPO / "solutions" / f"{assignment}.py").read_text()
    blocks = re.findall(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", source, re.S)
    assert blocks
    for block in blocks:
        assert "report(" in block, f"a hidden block of {assignment} reports nothing:\n{block[:300]}"
        assert not re.search(r"import \w+ as (reference|Reference)\w*|check_close\(", block), (
            f"a hidden block of {assignment} compares in the kernel instead of reporting:\n{block[:300]}")
