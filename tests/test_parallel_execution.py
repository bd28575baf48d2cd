"""_ext/parallel_execution.py: the book's notebooks execute several at a time into MyST-NB's own cache,
which then renders them without executing them again (a two-page book, built for real)."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# {name}

```{{code-cell}} ipython3
import os, time
start = time.time()
time.sleep(2)
print("{name}", os.getpid(), start)
```
"""


def test_two_pages_execute_at_once_into_the_cache_myst_nb_reads(tmp_path):
    (tmp_path / "_config.yml").write_text(
        "title: two pages\nexecute:\n  execute_notebooks: cache\n"
        f"sphinx:\n  local_extensions:\n    parallel_execution: {REPO / '_ext'}\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: a\n  - file: b\n")
    (tmp_path / "intro.md").write_text("# Intro\n")
    for name in ("a", "b"):
        (tmp_path / f"{name}.md").write_text(PAGE.format(name=name))
    env = {**os.environ, "COURSE_BUILD_JOBS": "2"}
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", "."], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "parallel execution: 2 notebook(s), 2 at a time" in log, log[-3000:]
    # MyST-NB found both in its cache (the build folder's), so it executed neither again
    assert len(re.findall(r"Using cached notebook", log)) == 2 and "Executing notebook" not in log, log[-3000:]
    assert (tmp_path / "_build" / ".jupyter_cache").is_dir() and not (tmp_path / ".jupyter_cache").exists()
    # the two kernels ran at the same time: each started before the other ended
    pages = {name: (tmp_path / "_build" / "html" / f"{name}.html").read_text() for name in ("a", "b")}
    starts = {name: float(re.search(rf"{name} \d+ (\d+\.\d+)", page).group(1)) for name, page in pages.items()}
    assert abs(starts["a"] - starts["b"]) < 2, starts
