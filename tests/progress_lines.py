"""``progress(message)``: a session fixture that prints one line at once, past pytest's output capture.

A fixture that grades every assignment, or a chapter that executes, takes minutes before its
test reports; a silent terminal reads as a hang. Each line starts with the seconds since the
test session started. tests/conftest.py makes the fixture available to every test. Under pytest-xdist a
worker has no terminal of its own: its lines go to its standard error, which the terminal shows, marked
with the worker's name.
"""

import sys
import threading
import time

import pytest

SESSION_START = time.monotonic()  # this module is imported when pytest loads tests/conftest.py


@pytest.fixture(scope="session")
def progress(pytestconfig):
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")

    worker = getattr(pytestconfig, "workerinput", {}).get("workerid")  # "gw0", ... in a pytest-xdist worker
    lock = threading.Lock()  # a fixture may grade in threads: one line at a time, and capture suspended once

    def say(message: str) -> None:
        line = f"[{time.monotonic() - SESSION_START:5.0f} s] {message}"
        with lock:
            if worker and capture is not None:
                with capture.global_and_fixture_disabled():
                    sys.stderr.write(f"[{worker}] {line}\n")
                    sys.stderr.flush()
                return
            if reporter is None or capture is None:  # e.g. `-p no:terminal`
                print(line, flush=True)
                return
            with capture.global_and_fixture_disabled():
                reporter.ensure_newline()
                reporter.write_line(line)

    return say
