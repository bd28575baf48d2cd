"""Grading the course's exercises: the instructor's side, kept apart from ``course`` (what students import).

* ``grading.assignments``: exercise sources in solutions/ -> nbgrader source -> student versions (``make release``);
* ``grading.config``: nbgrader's settings (nbgrader_config.py calls ``configure_grading``);
* ``grading.sandbox``: the bubblewrap sandbox the student's kernel runs in;
* ``grading.reports``: verdicts outside the student's process (the reference run, reading and comparing reports);
* ``grading.integrity``: review hints from a static reading of the student's code;
* ``grading.classroom``: ``python -m grading class <assignment>`` (grade a whole class, whatever one
  submission does) and ``python -m grading check <notebook>`` (a student's own check).

guide/instructors.md walks through the flow.
"""
