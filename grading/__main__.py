"""``python -m grading release | class <assignment> | check <notebook>``: see grading/classroom.py."""

import sys

from grading.classroom import main

sys.exit(main())
