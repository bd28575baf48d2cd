"""nbgrader's configuration for this course (read by every `nbgrader` command run at the repository root)."""

from course.assignments import NBGRADER_FOLDERS

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "attention-and-transformers"
for folder, path in NBGRADER_FOLDERS.items():
    setattr(c.CourseDirectory, folder, path)
c.CourseDirectory.db_url = "sqlite:///_grading/gradebook.db"

# What a student sees in place of a removed solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# nbgrader's default of 30 s per cell is too short for a slow laptop; no exercise cell needs more than this.
c.ExecutePreprocessor.timeout = 120
