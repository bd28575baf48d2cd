"""What a newcomer meets before any chapter: `make setup` and `make test` as README.md gives them.

Read with `make -n` (print the commands, run nothing), so these tests take a second.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TORCH_VERSION = next(line.split("==")[1].strip() for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("torch=="))

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is absent")


def planned(*arguments: str) -> str:
    """The commands make would run, without running them (-B: as if .venv were absent)."""
    # Under `make test` the outer make's flags and variables (ARGS=...) would reach this make too.
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    return subprocess.run(["make", "--no-print-directory", "-n", "-B", *arguments], cwd=REPO, env=env,
                          capture_output=True, text=True, check=True).stdout


def test_setup_installs_the_cpu_build_of_torch_without_a_gpu():
    commands = planned(".venv/.installed", "TORCH=cpu")
    assert f'"torch=={TORCH_VERSION}+cpu"' in commands
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in commands
    # torch is in place before requirements.txt, whose torch==X is then already satisfied by X+cpu.
    assert commands.index("+cpu") < commands.index("install -r requirements.txt")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA GPU: the default is the CUDA build")
def test_the_cpu_build_is_the_default_without_nvidia_smi():
    assert f"torch=={TORCH_VERSION}+cpu" in planned(".venv/.installed")


def test_torch_cuda_takes_pypis_build():
    commands = planned(".venv/.installed", "TORCH=cuda")
    assert f'install "torch=={TORCH_VERSION}"' in commands and "+cpu" not in commands


def test_setup_reports_progress():
    commands = planned(".venv/.installed")
    installs = [line for line in commands.splitlines() if " install " in line and "--dry-run" not in line]
    assert installs and not [line for line in installs if "--quiet" in line], "pip --quiet is silent for minutes"
    assert [line for line in commands.splitlines() if "make setup [" in line], "no step is announced"


def test_make_test_passes_args_to_pytest():
    assert planned("test", "ARGS=-k ch03 -x").rstrip().endswith("-m pytest -k ch03 -x")


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
@pytest.mark.parametrize("output", ["grades.csv", "students.csv"])
def test_grading_outputs_at_the_repository_root_are_ignored_by_git(output):
    # `nbgrader export --to grades.csv` and a class list for `nbgrader db student import` hold student data.
    result = subprocess.run(["git", "check-ignore", "--quiet", output], cwd=REPO)
    assert result.returncode == 0, f"{output} is not git-ignored: an instructor could commit students' grades"


@pytest.mark.skipif(not (REPO / "_build" / "html" / "index.html").exists(), reason="the website is not built")
def test_make_serve_serves_the_built_website():
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    server = subprocess.Popen(["make", "--no-print-directory", "serve", f"PORT={port}"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("make serve did not answer within 10 s")
        assert "Attention and Transformers" in page
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=10)


def test_make_serve_without_a_website_says_to_build_it(tmp_path):
    result = subprocess.run(["make", "--no-print-directory", "-f", str(REPO / "Makefile"), "serve"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "run `make book` first" in result.stdout
