"""Peak memory of the class command when a kernel writes hundreds of MiB to its stderr (issue 22, item 3).

A temporary course with chapter 3's assignment and two students: ``honest`` (the reference
answers) and ``noisy`` (the reference answers, then, in its first answer cell, ``--mib`` MiB
written to file descriptor 2 and to ``sys.stderr``, and nbgrader's failure line for ``honest``
imitated on both). ``python -m grading class ch03_attention`` grades them while this script
samples, every 0.2 s, the resident memory of the class command's processes: the grader's
(the class command, nbgrader) apart from the kernels' (bwrap and what runs inside it).

    python benchmarks/kernel_output_memory.py --mib 768      # the noisy class
    python benchmarks/kernel_output_memory.py --mib 0        # the same class, quiet: the baseline

Prints the peak of the grader's processes together, of the largest one, the size of the logs,
and the class table (``honest`` must stay graded).
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grading.assignments import REPO, nbgrader_command, nbgrader_notebook, write_nbgrader_source  # noqa: E402

ASSIGNMENT = "ch03_attention"
NOISE = """
import os, sys
_line = b"[AutogradeApp | ERROR] There was an error processing assignment 'ch03_attention' for student 'honest'\\n"
os.write(2, _line); sys.stderr.write(_line.decode())
_chunk = b"x" * (1 << 20)
for _ in range({fd_mib}):
    os.write(2, _chunk)
for _ in range({stream_mib}):
    sys.stderr.write("y" * (1 << 20))
"""


def descendants(root: int) -> list[int]:
    children = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(status.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def rss_kib(pid: int) -> tuple[int, str]:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return 0, ""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]), command
    return 0, command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=768, help="MiB the noisy kernel writes to its file descriptor 2 (a quarter more to sys.stderr)")
    parser.add_argument("--route", choices=["both", "fd", "stream"], default="both",
                        help="fd: only file descriptor 2 (the kernel process's own stderr); stream: only sys.stderr "
                             "(Jupyter messages, --mib // 4 MiB); both (default)")
    args = parser.parse_args()
    fd_mib = args.mib if args.route in ("both", "fd") else 0
    stream_mib = args.mib // 4 if args.route in ("both", "stream") else 0
    with tempfile.TemporaryDirectory(prefix="kernel-output-") as folder:
        course = Path(folder) / "course"
        course.mkdir()
        (course / "nbgrader_config.py").write_text("from grading.config import configure_grading\nc = get_config()\n"
                                                   "c.CourseDirectory.course_id = 'noise'\nconfigure_grading(c)\n")
        write_nbgrader_source(ASSIGNMENT, course / "source")
        nbgrader_command("generate_assignment", ASSIGNMENT, cwd=course)
        reference = {c.metadata["nbgrader"]["grade_id"]: c.source
                     for c in nbgrader_notebook(REPO / "solutions" / f"{ASSIGNMENT}.py").cells if c.metadata["nbgrader"]["solution"]}
        for student in ("honest", "noisy"):
            notebook = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
            for cell in notebook.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in reference:
                    cell.source = reference[grade_id]
                    if student == "noisy" and grade_id == "masked_softmax":
                        cell.source += NOISE.format(fd_mib=fd_mib, stream_mib=stream_mib)
            target = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            target.parent.mkdir(parents=True)
            nbformat.write(notebook, target)
        start = time.time()
        process = subprocess.Popen([sys.executable, "-m", "grading", "class", ASSIGNMENT], cwd=course,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        grader_peak = largest = kernel_peak = 0
        largest_command = ""
        while process.poll() is None:
            grader = kernel = 0
            for pid in descendants(process.pid):
                rss, command = rss_kib(pid)
                if "bwrap" in command or "ipykernel" in command:
                    kernel += rss
                else:
                    grader += rss
                    if rss > largest:
                        largest, largest_command = rss, command[:80]
            grader_peak, kernel_peak = max(grader_peak, grader), max(kernel_peak, kernel)
            time.sleep(0.2)
        stdout, stderr = process.communicate()
        logs = sum(path.stat().st_size for path in course.rglob("*.log"))
        print(f"class command with {fd_mib} MiB to the noisy kernel's file descriptor 2 and {stream_mib} MiB to its "
              f"sys.stderr: {time.time() - start:.0f} s")
        print(f"  peak resident memory of the grader's processes together: {grader_peak / 1024:.0f} MiB")
        print(f"  largest grader process: {largest / 1024:.0f} MiB ({largest_command})")
        print(f"  peak of the kernels' processes (bwrap, ipykernel): {kernel_peak / 1024:.0f} MiB")
        print(f"  logs written: {logs / 2**20:.2f} MiB; class command's stderr: {len(stderr) / 2**20:.2f} MiB")
        print(stdout)


if __name__ == "__main__":
    main()
