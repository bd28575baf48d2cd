"""nbgrader's configuration for this course (read by every `nbgrader` command run at the repository root)."""

from grading.assignments import NBGRADER_FOLDERS
from grading.config import configure_grading

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "attention-and-transformers"
for folder, path in NBGRADER_FOLDERS.items():
    setattr(c.CourseDirectory, folder, path)
c.CourseDirectory.db_url = "sqlite:///_grading/gradebook.db"

configure_grading(c)
