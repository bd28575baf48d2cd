"""``python -m grading release | class <assignment> | check <notebook> | kit | report <assignment>``: see grading/classroom.py,
grading/student_kit.py and grading/class_report.py."""

import sys

if sys.argv[1:2] == ["kit"]:  # the student kit (grading/student_kit.py)
    from grading.student_kit import main as kit

    sys.exit(kit(sys.argv[2:]))

if sys.argv[1:2] == ["report"]:  # the instructor's class report (grading/class_report.py)
    from grading.class_report import main as report

    sys.exit(report(sys.argv[2:]))

from grading.classroom import main

sys.exit(main())
