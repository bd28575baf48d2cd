"""The student kit: what a student needs to do the exercises and grade them as the grader will, and nothing more.

``python -m grading kit`` writes ``_build/student-kit/`` and ``_build/student-kit.zip``::

    README.md            how to install, work and self-check
    pyproject.toml, requirements.txt
    course/              the course package without the answers of every assignment (grading/student_build.py)
    data/                the data sets the course's code reads
    grading/             the self-check (`python -m grading check <notebook>`) and its sandbox
    exercises/<a>/<a>.ipynb   the student version of each assignment (nbgrader's, from `python -m grading release`)
    exercises/<a>/course/     the student build of `course` for that assignment: earlier chapters' answers
                              included, this one's removed (a notebook opened in its folder imports it first)
    exercises/<a>/data -> ../../data

Not in it: ``solutions/`` (the reference answers, hidden tests and rubrics), ``chapters/``,
``tests/``, ``_build/``, ``_grading/``. The self-check of a kit runs the visible tests (there
are no hidden ones to run) in the same sandbox, with the assignment's student build.
"""

import argparse
import os
import shutil
import stat
import zipfile
from pathlib import Path

from grading.assignments import assignment_names
from grading.student_build import ALL_ANSWERS, COURSE, REPO, write_build

KIT = REPO / "_build" / "student-kit"
COPIED_FILES = ("pyproject.toml", "requirements.txt")
GRADING_FILES = "*.py"  # the whole grading package: the self-check needs its settings, sandbox and checks
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")

README = """# {title}: the student kit

Everything you need to do the exercises and to grade them exactly as your instructor will:
the exercises (`exercises/<assignment>/<assignment>.ipynb`), the course's code (`course/`, without
the exercises' answers), the data, and the self-check (`grading/`).

## Set up (once)

```bash
python3 -m venv .venv && source .venv/bin/activate
pip install -r requirements.txt --extra-index-url https://download.pytorch.org/whl/cpu
```

The self-check runs your notebook in a sandbox: it needs bubblewrap (Debian/Ubuntu:
`sudo apt-get install bubblewrap`; Linux only).

## Work

```bash
jupyter lab exercises/ch03_attention/ch03_attention.ipynb
```

Each exercise folder holds its own `course/`: the course's code as you may use it in that
exercise. What earlier chapters built is there; what this exercise asks you to write is not
(calling it raises `NotAvailableWhileGrading`), exactly as when your notebook is graded.

## Before you submit

```bash
python -m grading check exercises/ch03_attention/ch03_attention.ipynb
```

It prints the points of each visible test, why a test failed, and what would be flagged for
review. The hidden tests are not in the kit: your instructor's grading adds them.
"""


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=IGNORED, symlinks=False)


def make_kit(target: Path = KIT, assignments: list[str] | None = None, archive: bool = True) -> Path:
    """Write the kit into ``target`` (replaced) and, with ``archive``, ``<target>.zip`` beside it; returns ``target``."""
    assignments = assignments or assignment_names()
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / "README.md").write_text(README.format(title="Attention and Transformers"))
    for name in COPIED_FILES:
        shutil.copyfile(REPO / name, target / name)
    write_build(ALL_ANSWERS, target / "course", COURSE)
    _copy_tree(REPO / "data", target / "data")
    (target / "grading").mkdir()
    for path in sorted((REPO / "grading").glob(GRADING_FILES)):
        shutil.copyfile(path, target / "grading" / path.name)
    for assignment in assignments:
        released = REPO / "exercises" / assignment / f"{assignment}.ipynb"
        if not released.exists():
            raise FileNotFoundError(f"{released} does not exist: run `python -m grading release` first")
        folder = target / "exercises" / assignment
        folder.mkdir(parents=True)
        shutil.copyfile(released, folder / released.name)
        write_build(assignment, folder / "course", COURSE)
        os.symlink("../../data", folder / "data")  # the course's code finds its data beside its package
    if archive:
        write_zip(target, target.with_suffix(".zip"))
    return target


def write_zip(folder: Path, path: Path) -> Path:
    """``folder`` as a zip file whose top folder is ``folder``'s name; links stay links (unzip restores them)."""
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in sorted(folder.rglob("*")):
            name = (Path(folder.name) / item.relative_to(folder)).as_posix()
            if item.is_symlink():
                info = zipfile.ZipInfo(name)
                info.create_system = 3  # Unix: the mode bits below are read
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                archive.writestr(info, os.readlink(item))
            elif item.is_file():
                archive.write(item, name)
    os.replace(partial, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading kit", description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every assignment in solutions/")
    parser.add_argument("--output", type=Path, default=KIT, help=f"the kit's folder (default {KIT.relative_to(REPO)}; the zip beside it)")
    parser.add_argument("--no-zip", action="store_true", help="write the folder only")
    args = parser.parse_args(argv)
    kit = make_kit(args.output, args.assignments or None, archive=not args.no_zip)
    print(f"student kit: {kit}" + ("" if args.no_zip else f" and {kit.with_suffix('.zip')}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
