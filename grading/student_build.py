"""The ``course`` package as a student may use it while an assignment is graded: its answers removed.

The repository's ``course/`` holds the reference implementation of every graded function (the
chapters run on it). A kernel that grades a submission must not reach them: otherwise
``from course.attention import masked_softmax`` answers the exercise. So the sandbox
(grading/sandbox.py) mounts, in place of ``course/``, a **student build** of the package for the
assignment being graded: the same files, where each function or class that this assignment asks
for (``ANSWERS``: for each answer id of ``solutions/<assignment>.py``, the objects of ``course``
that implement the same contract, the ones its hidden tests used to compare with) is replaced, in
the source itself, by a stub that raises ``NotAvailableWhileGrading`` when called or
instantiated. Nothing of the implementation is left in the file, so no route finds it: an
import, ``importlib``, ``sys.modules``, ``inspect.getsource``, reading ``course.__file__``'s
folder, a ``.pyc`` (the build has none, and the kernel writes none). What earlier chapters built
stays usable: chapter 6's exercise may use chapter 5's ``MultiHeadAttention``, since only
chapter 6's answers are removed from chapter 6's build.

The build is made when a kernel first needs it, in ``_build/student_course/<assignment>/course/``,
and made again when ``course/`` (or this table) changes. ``python -m grading kit`` ships one per
assignment in the student kit (grading/student_kit.py), and a kit's grader uses those.

``ALL_ANSWERS`` (an assignment name no exercise has: the answers of every assignment removed)
is what a kernel gets when the grader cannot tell which assignment it runs.
"""

import ast
import fcntl
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COURSE = REPO / "course"
BUILD_FOLDER = REPO / "_build" / "student_course"
STAMP = "STUDENT_BUILD"  # in each build: the assignment it is for and the hash of what it was made from
ALL_ANSWERS = "all-assignments"
GENERATOR_VERSION = "1"

# assignment -> answer id (the `# %% solution="..."` cell) -> the objects of `course` with the same
# contract ("module.name", top-level functions and classes). An answer with no such object maps to [].
# tests/test_student_build.py checks that every answer id of solutions/ is listed here.
ANSWERS: dict[str, dict[str, list[str]]] = {
    "ch01_rnn_seq2seq": {
        "rnn_cell": ["rnn.rnn_cell"],
        "greedy_decode": ["rnn.greedy_search"],
        "lstm_cell": ["rnn.lstm_cell", "rnn.LSTMCell"],
    },
    "ch02_bahdanau_attention": {
        "additive_scores": ["rnn.additive_scores"],
        "attention_weights": ["rnn.attention_weights"],
        "attention_step": ["rnn.attention_decoder_step"],
        # the tests compare with the course's own model (Seq2Seq.forward): it stays
        "teacher_forcing": [],
        "train_reverser": ["seq2seq_training.train_seq2seq"],  # the course's loop: the exercise is to write one
        "experiment": [],  # the student's own comparison: nothing of the course answers it
    },
    "ch03_attention": {
        "masked_softmax": ["attention.masked_softmax"],
        "masks": ["attention.padding_mask", "attention.causal_mask"],
        # and the other implementations of the same attention in the course (chapter 9's)
        "scaled_dot_product_attention": ["attention.scaled_dot_product_attention", "flash_attention.naive_attention",
                                         "flash_attention.tiled_attention", "graph_attention.message_passing_attention"],
        "attention_backward": ["attention.attention_backward"],
    },
    "ch04_self_attention": {
        "self_attention": ["transformer.SelfAttention"],
        "sinusoidal": ["transformer.sinusoidal_positional_encoding"],
        "equivariance": ["transformer.equivariance_gap"],
    },
    "ch05_multi_head_attention": {
        "heads": ["transformer.split_heads", "transformer.merge_heads"],
        "multi_head_attention": ["transformer.MultiHeadAttention"],
        "saturation_prediction": [],  # the student's prediction, a string: nothing of the course answers it
        "saturation": [],  # measured in the chapter's own cells, no function of the course
        "heads_experiment": [],  # the student's own experiment: nothing of the course answers it
    },
    "ch06_transformer": {
        "encoder_block": ["transformer.TransformerEncoderLayer"],
        "decoder_block": ["transformer.TransformerDecoderLayer"],
        "layer_norm": ["transformer.layer_norm_forward", "transformer.layer_norm_backward"],
        "sorter": ["digit_sorter.ExerciseSorter"],  # the grader's copy of the exercise's model
        "sorter_training": [],  # the student's loop: chapter 6's page trains its sorter with a loop of its own, not from course
        "sorter_prediction": [],  # the student's prediction, a string: nothing of the course answers it
    },
    "ch07_training_gpt": {
        "next_token_loss": ["gpt.next_token_loss"],
        "learning_rate": ["gpt.learning_rate"],
        "cached_attention_step": ["gpt.cached_attention_step"],
        "training_loop": ["train_gpt.train"],  # chapter 7's own loop: the exercise is to write one
    },
    "ch08_translation": {
        "collate": ["seq2seq_data.collate"],
        "bleu": ["translation.modified_precision", "translation.brevity_penalty", "translation.corpus_bleu"],
        "beam_search": ["translation.beam_search_function", "translation.beam_search_steps", "translation.beam_search"],
        "bpe_learner": ["bpe.learn_merges", "bpe.merge_pair"],
        "bpe_encoder": ["bpe.segment"],
    },
    "ch09_beyond_text": {
        "patch_embedding": ["vit.patchify"],
        "tiled_attention": ["flash_attention.tiled_attention"],
        "apply_rope": ["rope.apply_rope", "rope.rope_angles"],
    },
    "ch10_three_families": {
        "mask_tokens": ["bert.mask_tokens"],
        "masked_lm_loss": ["bert.masked_lm_loss"],
        "experiment": [],  # the student's own comparison of masking rates: nothing of the course answers it
    },
}


class UnknownAssignment(KeyError):
    pass


def removed_objects(assignment: str) -> dict[str, list[str]]:
    """{module: [names]} of what the student build of ``assignment`` removes (every assignment's for ALL_ANSWERS)."""
    if assignment == ALL_ANSWERS:
        answers = {f"{name}:{answer}": objects for name, table in ANSWERS.items() for answer, objects in table.items()}
    elif assignment in ANSWERS:
        answers = ANSWERS[assignment]
    else:
        raise UnknownAssignment(f"no student build is defined for {assignment!r} (grading/student_build.py: ANSWERS)")
    removed: dict[str, list[str]] = {}
    for objects in answers.values():
        for qualified in objects:
            module, name = qualified.split(".", 1)
            if name not in removed.setdefault(module, []):
                removed[module].append(name)
    return removed


def answer_of(assignment: str, qualified: str) -> tuple[str, str]:
    """(assignment, answer id) whose answer ``qualified`` ("module.name") implements."""
    for name, table in ANSWERS.items():
        if assignment in (name, ALL_ANSWERS):
            for answer, objects in table.items():
                if qualified in objects:
                    return name, answer
    return assignment, "?"


def not_available_message(assignment: str, module: str, name: str) -> str:
    owner, answer = answer_of(assignment, f"{module}.{name}")
    where = f"while grading {assignment}" if assignment != ALL_ANSWERS else "in the student kit"
    return (f"course.{module}.{name} is not available {where}: it is the reference for answer {answer!r} of {owner}; "
            f"write and use your own (in your notebook)")


def _stub_source(kind: str, name: str, message: str, indent: str) -> str:
    text = repr(message)
    if kind == "class":
        body = (f"class {name}:\n"
                f"    {text!s}\n"
                "    __not_available_while_grading__ = True\n\n"
                "    def __new__(cls, *args, **kwargs):\n"
                f"        raise NotAvailableWhileGrading({text})\n\n"
                "    def __init__(self, *args, **kwargs):\n"
                f"        raise NotAvailableWhileGrading({text})\n")
    else:
        body = (f"def {name}(*args, **kwargs):\n"
                f"    {text!s}\n"
                f"    raise NotAvailableWhileGrading({text})\n\n\n"
                f"{name}.__not_available_while_grading__ = True\n")
    return "".join(indent + line if line.strip() else line for line in body.splitlines(True))


EXCEPTION_SOURCE = '''

class NotAvailableWhileGrading(NotImplementedError):
    """Raised by what a student build of ``course`` removed: the answer of an exercise (grading/student_build.py)."""
'''


def strip_module(source: str, module: str, names: list[str], assignment: str) -> str:
    """``source`` with each top-level function or class in ``names`` replaced by a stub that raises (decorators and body gone)."""
    tree = ast.parse(source)
    lines = source.splitlines(True)
    found = {}
    last_import = 0
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is tree.body[0]):
            last_import = node.end_lineno
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in names:
            found[node.name] = node
    missing = sorted(set(names) - set(found))
    if missing:
        raise ValueError(f"course/{module}.py has no top-level {', '.join(missing)} (grading/student_build.py: ANSWERS)")
    for name, node in sorted(found.items(), key=lambda item: -item[1].lineno):
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        message = not_available_message(assignment, module, name)
        kind = "class" if isinstance(node, ast.ClassDef) else "def"
        lines[start:node.end_lineno] = [_stub_source(kind, name, message, "")]
    # the exception, defined after the module's imports (a `from __future__` must stay first)
    lines.insert(last_import, EXCEPTION_SOURCE + "\n")
    result = "".join(lines)
    ast.parse(result)  # still Python
    return result


def source_hash(assignment: str, course: Path = COURSE) -> str:
    digest = hashlib.sha256(f"{GENERATOR_VERSION}\0{assignment}\0{sorted(removed_objects(assignment).items())}".encode())
    for path in sorted(course.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(course).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def write_build(assignment: str, target: Path, course: Path = COURSE) -> Path:
    """Write the student build of ``course`` for ``assignment`` into ``target`` (a folder that must not exist); returns it."""
    removed = removed_objects(assignment)
    target.mkdir(parents=True)
    for path in sorted(course.rglob("*")):
        relative = path.relative_to(course)
        if "__pycache__" in relative.parts or path.suffix in (".pyc", ".pyo") or path.is_symlink():
            continue
        if path.is_dir():
            (target / relative).mkdir(exist_ok=True)
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        module = ".".join(relative.with_suffix("").parts)
        if path.suffix == ".py" and module in removed:
            (target / relative).write_text(strip_module(path.read_text(), module, removed[module], assignment))
        else:
            shutil.copyfile(path, target / relative)
    unknown = sorted(set(removed) - {".".join(p.relative_to(course).with_suffix("").parts) for p in course.rglob("*.py")})
    if unknown:
        raise ValueError(f"course has no module {', '.join(unknown)} (grading/student_build.py: ANSWERS)")
    (target / STAMP).write_text(f"{assignment}\n{source_hash(assignment, course)}\n")
    for path in target.rglob("*"):  # read-only files (the sandbox binds the folder read-only anyway)
        if path.is_file():
            path.chmod(0o444)
    return target


def is_student_build(folder: Path, assignment: str | None = None) -> bool:
    """Whether ``folder`` is a student build of ``course`` (for ``assignment``, when given)."""
    try:
        lines = (Path(folder) / STAMP).read_text().split()
    except OSError:
        return False
    return bool(lines) and (assignment is None or lines[0] == assignment)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def student_course(assignment: str, course: Path = COURSE, build_folder: Path = BUILD_FOLDER) -> Path:
    """The folder of the student build of ``course`` for ``assignment``: made (or made again) when missing or stale.

    Where ``course`` is itself a student build (the student kit), the build shipped for the assignment
    beside its notebook (``exercises/<assignment>/course``) is used when present, else ``course`` itself.
    """
    course = Path(course)
    if is_student_build(course):  # a student kit: its course already lacks the answers
        shipped = course.parent / "exercises" / assignment / "course"
        return shipped if is_student_build(shipped, assignment) else course
    if assignment not in ANSWERS:
        assignment = ALL_ANSWERS
    digest = source_hash(assignment, course)
    target = Path(build_folder) / assignment / "course"
    if (target / STAMP).is_file() and (target / STAMP).read_text().split()[1:2] == [digest]:
        return target
    Path(build_folder).mkdir(parents=True, exist_ok=True)
    with open(Path(build_folder) / ".lock", "w") as lock:  # two graders of one assignment at once make it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / STAMP).is_file() and (target / STAMP).read_text().split()[1:2] == [digest]:
            return target
        fresh = Path(tempfile.mkdtemp(prefix=f".{assignment}-", dir=build_folder)) / "course"
        write_build(assignment, fresh, course)
        old = target.parent.with_name(f".{assignment}-old-{os.getpid()}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            old.mkdir()
            target.rename(old / "course")
        fresh.rename(target)
        _remove(fresh.parent)
        _remove(old)  # a kernel that mounted the old build keeps it: the mount holds the folder
    return target
