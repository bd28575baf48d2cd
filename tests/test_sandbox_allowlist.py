"""The sandbox binds what a kernel needs, nothing else of the host (grading/sandbox.py).

Each check runs a small Python program under the same bwrap command line a graded kernel gets
(``bwrap_command``), with a control on the grader's side where it makes the check able to fail:
a Unix socket that the grader can connect to and the kernel cannot, a folder the grader sees and
the kernel does not. The last test runs a real sandboxed kernel and shows that what its process
writes to its stdout/stderr stays in a bounded buffer, away from the grader's output.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from grading.sandbox import REPO, SANDBOX_ETC, SYSTEM_FOLDERS, bwrap_command, python_paths
from grading.student_build import student_course

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

ASSIGNMENT = "ch03_attention"


def run_in_sandbox(code: str, tmp_path: Path) -> dict:
    """Run ``code`` (which prints one JSON line last) as a graded kernel would be run; its result."""
    scratch = Path(tempfile.mkdtemp(prefix="grading-kernel-"))
    try:
        command = bwrap_command([sys.executable, "-c", code], scratch, tmp_path, course_package=student_course(ASSIGNMENT))
        result = subprocess.run(command, capture_output=True, text=True, cwd=scratch, timeout=120)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def unlisted_folders() -> list[Path]:
    """Writable places of the host that the sandbox does not list."""
    return [Path(p) for p in ("/srv", "/var/tmp", "/run", "/opt", "/home", "/mnt") if os.access(p, os.W_OK)] + [REPO / "_build"]


def test_the_kernel_sees_only_the_listed_folders(tmp_path):
    seen = run_in_sandbox(
        "import json, os\n"
        "print(json.dumps({'root': sorted(os.listdir('/')), 'etc': sorted(os.listdir('/etc')),\n"
        "                  'repo': sorted(os.listdir(%r)), 'tmp': len(os.listdir('/tmp')),\n"
        "                  'proc': sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}))" % str(REPO), tmp_path)
    python_tops = {path.parts[1] for path in python_paths()} | {REPO.parts[1]}
    allowed = {Path(p).name for p in SYSTEM_FOLDERS} | {"etc", "dev", "proc", "sys", "tmp"} | python_tops
    assert set(seen["root"]) <= allowed, set(seen["root"]) - allowed
    for name in ("run", "var", "srv", "home", "opt", "mnt", "media", "boot"):
        if name not in python_tops:
            assert name not in seen["root"], name
    assert set(seen["etc"]) <= {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts", "mime.types", *SANDBOX_ETC}, seen["etc"]
    assert "shadow" not in seen["etc"] and "ssl" not in seen["etc"]
    # of the repository, the package and the data (and the environment where it lives inside it)
    assert set(seen["repo"]) <= {"course", "data"} | {p.relative_to(REPO).parts[0] for p in python_paths() if REPO in p.parents}
    # its own scratch folder only, and the path to the repository where that lives in /tmp (a clone in /tmp/ci)
    assert seen["tmp"] == 1 + (Path("/tmp") in REPO.parents)
    assert len(seen["proc"]) <= 3 and os.getpid() not in seen["proc"] or max(seen["proc"]) < 10  # its own PID namespace


def test_an_unlisted_folder_is_invisible(tmp_path):
    planted = []
    for parent in unlisted_folders():
        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="grading-probe-", dir=parent))
        (folder / "secret.txt").write_text("another course's answers")
        planted.append(folder)
    try:
        assert planted and all((folder / "secret.txt").exists() for folder in planted)  # the grader sees each
        seen = run_in_sandbox(
            "import json, os\nprint(json.dumps({p: os.path.exists(p) or os.path.exists(os.path.dirname(p) + '/secret.txt') for p in %r}))"
            % [str(folder) for folder in planted], tmp_path)
        assert not any(seen.values()), seen
    finally:
        for folder in planted:
            shutil.rmtree(folder, ignore_errors=True)


def test_no_socket_of_the_host_accepts_a_connection(tmp_path):
    servers, paths = [], []
    for parent in unlisted_folders() + [Path(tempfile.gettempdir())]:
        folder = Path(tempfile.mkdtemp(prefix="grading-probe-", dir=parent))
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(folder / "service.sock"))
        os.chmod(folder, 0o777)
        os.chmod(folder / "service.sock", 0o777)
        server.listen()
        servers.append(server)
        paths.append(str(folder / "service.sock"))
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0grading-probe-%d" % os.getpid())  # an abstract socket: no file at all
    abstract.listen()
    servers.append(abstract)
    try:
        for path in paths:  # the control: the grader connects to each
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(path)
        code = (
            "import json, socket\nresult = {}\n"
            "for path in %r + ['\\0grading-probe-%d']:\n"
            "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "    try:\n        s.connect(path); result[repr(path)] = 'connected'\n"
            "    except OSError as error:\n        result[repr(path)] = type(error).__name__\n"
            "print(json.dumps(result))" % (paths, os.getpid()))
        seen = run_in_sandbox(code, tmp_path)
        assert len(seen) == len(paths) + 1
        assert "connected" not in seen.values(), seen
    finally:
        for server in servers:
            server.close()
        for path in paths:
            shutil.rmtree(Path(path).parent, ignore_errors=True)


def test_the_kernel_has_what_grading_needs(tmp_path):
    seen = run_in_sandbox(
        "import json, os, pwd, torch, numpy, matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
        "plt.plot([0, 1]); plt.savefig('x.png')\n"
        "import course.checks, course.transformer\n"
        "print(json.dumps({'user': pwd.getpwuid(os.getuid()).pw_name, 'sum': float(torch.ones(3).sum()),\n"
        "                  'data': os.path.exists(%r), 'threads': torch.get_num_threads()}))" % str(REPO / "data" / "tinyshakespeare.txt"),
        tmp_path)
    assert seen == {"user": "nobody", "sum": 3.0, "data": True, "threads": seen["threads"]}


def test_kernel_output_goes_to_a_bounded_buffer_not_the_graders_stderr(capfd):
    """A kernel writing 200 MiB to its file descriptor 2 (past ipykernel's capture): the grader keeps 64 KiB."""
    import nbformat
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient

    from grading.sandbox import MAX_KERNEL_OUTPUT_BYTES, SandboxedKernelManager

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nchunk = b'KERNEL-NOISE ' * 80000\nfor _ in range(200):\n    os.write(2, chunk)\nos.write(1, b'the end')\n")])
    km = SandboxedKernelManager(kernel_name="python3")
    NotebookClient(notebook, timeout=120, km=km).execute()
    run_sync(km.shutdown_kernel)(now=True)
    output = km.kernel_output
    assert output.wait(30)  # the kernel is gone: its output is all read
    assert output.total >= 200 * 80000 * 13
    text = output.text()
    assert len(text.encode()) <= MAX_KERNEL_OUTPUT_BYTES + 200 and "bytes of kernel output dropped" in text
    captured = capfd.readouterr()
    assert "KERNEL-NOISE" not in captured.err and "KERNEL-NOISE" not in captured.out
