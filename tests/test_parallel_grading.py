"""Grading a class with several workers (``python -m grading class <assignment> --workers N``).

Each worker grades its share of the class into its own copy of the SQLite gradebook (SQLite
takes one writer at a time); ``merge_gradebook`` copies their submissions back. The whole path,
kernels and sandbox included, is exercised by the red team (tests/test_hostile_class.py grades
its class with two workers and checks every student's grade) and timed against a serial run,
grades compared cell by cell, by ``benchmarks/grade_class.py --workers 1 2``. Here: the merge
itself, on a gradebook built with nbgrader's API (no kernel), and the choice of the default.
"""

import shutil

from nbgrader.api import Gradebook

from grading import classroom

ASSIGNMENT = "ps1"


def gradebook_with_a_class(path) -> str:
    url = f"sqlite:///{path}"
    with Gradebook(url) as gradebook:
        gradebook.add_assignment(ASSIGNMENT)
        gradebook.add_notebook("ps1", ASSIGNMENT)
        gradebook.add_grade_cell("test_a", "ps1", ASSIGNMENT, max_score=3, cell_type="code")
        gradebook.add_grade_cell("essay", "ps1", ASSIGNMENT, max_score=2, cell_type="markdown")
        gradebook.add_solution_cell("answer_a", "ps1", ASSIGNMENT)
        gradebook.add_solution_cell("essay", "ps1", ASSIGNMENT)
        for student in ("ada", "bo", "cy"):
            gradebook.add_student(student, first_name=student.title(), email=f"{student}@example.org")
        gradebook.add_submission(ASSIGNMENT, "cy")  # graded before, by an earlier run: its grades must survive
        gradebook.find_grade("test_a", "ps1", ASSIGNMENT, "cy").auto_score = 1.0
        gradebook.db.commit()
    return url


def grade_in(url: str, student: str, score: float, comment: str, new: bool = False) -> None:
    """What nbgrader autograde writes for one student: the submission, the autograder's scores and comments."""
    with Gradebook(url) as gradebook:
        if new:
            gradebook.add_student(student)  # nbgrader adds a student who is not on the class list
        gradebook.update_or_create_submission(ASSIGNMENT, student, timestamp="2026-12-01 10:00:00")
        grade = gradebook.find_grade("test_a", "ps1", ASSIGNMENT, student)
        grade.auto_score, grade.needs_manual_grade = score, False
        gradebook.find_comment("answer_a", "ps1", ASSIGNMENT, student).auto_comment = comment
        gradebook.find_submission_notebook("ps1", ASSIGNMENT, student).late_submission_penalty = 0.5
        gradebook.db.commit()


def grades(url: str) -> dict:
    with Gradebook(url) as gradebook:
        return {(s.student.id, g.name): (g.score, g.needs_manual_grade) for s in gradebook.assignment_submissions(ASSIGNMENT)
                for n in s.notebooks for g in n.grades}


def test_each_workers_submissions_are_merged_into_the_gradebook_and_nothing_else_changes(tmp_path):
    main = gradebook_with_a_class(tmp_path / "gradebook.db")
    shards = []
    for k in (1, 2):
        shutil.copy(tmp_path / "gradebook.db", tmp_path / f"gradebook-{k}.db")
        shards.append(f"sqlite:///{tmp_path / f'gradebook-{k}.db'}")
    grade_in(shards[0], "ada", 3.0, "Review: ada's cell")
    grade_in(shards[1], "bo", 2.0, "")
    grade_in(shards[1], "zed", 1.0, "", new=True)
    before = grades(main)

    classroom.merge_gradebook(shards[0], main, ASSIGNMENT, ["ada"])
    classroom.merge_gradebook(shards[1], main, ASSIGNMENT, ["bo", "zed"])

    after = grades(main)
    assert after[("ada", "test_a")] == (3.0, False) and after[("bo", "test_a")] == (2.0, False)
    assert after[("zed", "test_a")] == (1.0, False), "a student nbgrader added in a worker is merged too"
    assert after[("ada", "essay")] == (0.0, True), "a written answer still waits for a person"
    assert after[("cy", "test_a")] == before[("cy", "test_a")] == (1.0, True), "a student no worker graded keeps their grades"
    with Gradebook(main) as gradebook:
        assert gradebook.find_comment("answer_a", "ps1", ASSIGNMENT, "ada").auto_comment == "Review: ada's cell"
        assert gradebook.find_submission_notebook("ps1", ASSIGNMENT, "bo").late_submission_penalty == 0.5
        assert str(gradebook.find_submission(ASSIGNMENT, "ada").timestamp) == "2026-12-01 10:00:00"
        assert gradebook.find_student("ada").email == "ada@example.org", "the class list is kept"
        assert {s.id for s in gradebook.students} == {"ada", "bo", "cy", "zed"}


def test_merging_again_updates_rather_than_duplicates(tmp_path):
    """A class graded again (``--force``): the gradebook already holds the submission, which is updated in place."""
    main = gradebook_with_a_class(tmp_path / "gradebook.db")
    grade_in(main, "ada", 0.0, "")
    shutil.copy(tmp_path / "gradebook.db", tmp_path / "shard.db")
    shard = f"sqlite:///{tmp_path / 'shard.db'}"
    grade_in(shard, "ada", 3.0, "")
    classroom.merge_gradebook(shard, main, ASSIGNMENT, ["ada"])
    with Gradebook(main) as gradebook:
        assert len(gradebook.find_student("ada").submissions) == 1
    assert grades(main)[("ada", "test_a")] == (3.0, False)


def test_the_default_number_of_workers_is_bounded_by_cores_and_memory(tmp_path, monkeypatch):
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.SandboxedKernelManager.max_memory = 2**60\n")
    assert classroom.default_workers(tmp_path) == 1, "a kernel may take more memory than the machine has: one at a time"
    (tmp_path / "nbgrader_config.py").write_text("c = get_config()\nc.SandboxedKernelManager.max_memory = 2**20\n")
    monkeypatch.setattr(classroom, "_cores", lambda: 3)
    assert classroom.default_workers(tmp_path) == 3


def test_shards_of_a_class_cover_it_once(tmp_path):
    """``--shard K/N``: N batch jobs (a Slurm array, Kubernetes Jobs), each grading every N-th student, grade each
    student exactly once."""
    import pytest

    names = [f"s{i:02d}" for i in range(7)] + ["zoe", "adam"]
    for name in names:
        (tmp_path / "submitted" / name / ASSIGNMENT).mkdir(parents=True)
    shares = [classroom.shard_students(tmp_path, ASSIGNMENT, f"{k}/4") for k in range(1, 5)]
    assert sorted(sum(shares, [])) == sorted(names) and all(len(share) in (2, 3) for share in shares)
    assert classroom.shard_students(tmp_path, ASSIGNMENT, "10/10") == [], "a shard past the class is empty, not everyone"
    assert classroom.shard_students(tmp_path, ASSIGNMENT, "1/2", among=["zoe", "s01", "s02"]) == ["s01", "zoe"]
    for bad in ("0/4", "5/4", "1-4", "a/b"):
        with pytest.raises(SystemExit):
            classroom.shard_students(tmp_path, ASSIGNMENT, bad)


def test_each_worker_gets_its_share_of_the_cores_unless_the_instructor_set_a_thread_count(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(classroom, "_nbgrader_streamed", lambda args, course, env, on_line: seen.append(env) or "")
    settings = {"submitted_directory": "submitted", "autograded_directory": "autograded"}

    def grade_one_share():
        outcomes = {"ada": classroom.Outcome("ada")}
        classroom._grade_share(ASSIGNMENT, tmp_path, settings, outcomes, ["ada"], f"sqlite:///{tmp_path / 'gb.db'}",
                               False, tmp_path, "", classroom._Progress(1, False), threads=1)

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    grade_one_share()
    assert seen[-1] == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    grade_one_share()
    assert seen[-1] == {"MKL_NUM_THREADS": "1"}  # the instructor's OMP_NUM_THREADS reaches nbgrader unchanged
