"""``python -m grading release | class <assignment> | check <notebook> | kit | report <assignment> | points``: see
grading/classroom.py, grading/student_kit.py, grading/class_report.py and grading/points.py."""

import sys

if sys.argv[1:2] == ["kit"]:  # the student kit (grading/student_kit.py)
    from grading.student_kit import main as kit

    sys.exit(kit(sys.argv[2:]))

if sys.argv[1:2] == ["report"]:  # the instructor's class report (grading/class_report.py)
    from grading.class_report import main as report

    sys.exit(report(sys.argv[2:]))

if sys.argv[1:2] == ["points"]:  # autograded and hand-graded points of each assignment (grading/points.py)
    from grading.points import main as points

    sys.exit(points(sys.argv[2:]))

from grading.classroom import main

sys.exit(main())
