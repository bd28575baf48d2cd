"""``python -m grading release | class <assignment> | check <notebook> | kit``: see grading/classroom.py and grading/student_kit.py."""

import sys

if sys.argv[1:2] == ["kit"]:  # the student kit (grading/student_kit.py)
    from grading.student_kit import main as kit

    sys.exit(kit(sys.argv[2:]))

from grading.classroom import main

sys.exit(main())
