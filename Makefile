# One entry point for readers, students, instructors and CI. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
# nbgrader calls `alembic` as a subprocess: the environment's bin folder must be on PATH.
export PATH := $(BIN):$(PATH)
# Extra arguments for pytest: `make test ARGS="-k ch03 -x"`.
ARGS ?=

# Which build of torch `make setup` installs. On Linux, PyPI's torch is the CUDA build: with the
# NVIDIA libraries it pulls, about 2.7 GB to download. The CPU build is about 190 MB.
#   TORCH=cpu   the CPU build (the default where `nvidia-smi` is absent): taken from pip's own
#               sources when they offer it (a local wheel folder or mirror), else from PyTorch's
#               CPU index, $(TORCH_CPU_INDEX)
#   TORCH=cuda  PyPI's build (the default where `nvidia-smi` is present), for a GPU
TORCH ?= $(if $(shell command -v nvidia-smi 2>/dev/null),cuda,cpu)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# The torch version is pinned once, in requirements.txt.
TORCH_VERSION := $(shell sed -n 's/^torch==\([0-9][0-9.]*\).*/\1/p' requirements.txt)
# CPU builds carry the local label "+cpu" on Linux and Windows; macOS wheels are CPU builds without it.
TORCH_CPU_WHEEL := torch==$(TORCH_VERSION)$(if $(filter Darwin,$(shell uname -s)),,+cpu)
PIP := $(BIN)/python -m pip

# `make book CHAPTER=ch03` builds one chapter (with its exercises and the reference pages).
CHAPTER ?=
CHAPTER_NAME := $(if $(CHAPTER),$(basename $(notdir $(firstword $(wildcard chapters/$(CHAPTER)*.md)))))

# Writes a table of contents (the chapter, its exercises, the reference pages) and a copy of _config.yml
# whose paths are absolute (jupyter-book reads them relative to the configuration's folder) and whose
# execution cache is the whole book's, for `make book CHAPTER=...`.
define ONE_CHAPTER_BOOK
import os, sys, yaml
name, out = sys.argv[1:]
entry = {"file": f"chapters/{name}"}
if os.path.exists(f"exercises/{name}/{name}.ipynb"):
    entry["sections"] = [{"file": f"exercises/{name}/{name}"}]
toc = {"format": "jb-book", "root": "intro", "chapters": [entry, {"file": "notation"}, {"file": "glossary"}, {"file": "bibliography"}]}
config = yaml.safe_load(open("_config.yml"))
sphinx = config["sphinx"]
sphinx["local_extensions"] = {ext: os.path.abspath(path) for ext, path in sphinx["local_extensions"].items()}
sphinx["config"]["html_extra_path"] = [os.path.abspath(path) for path in sphinx["config"].get("html_extra_path", [])]
sphinx["config"]["nb_execution_cache_path"] = os.path.abspath("_build/.jupyter_cache")
config["bibtex_bibfiles"] = [os.path.abspath(path) for path in config.get("bibtex_bibfiles", [])]
if config.get("html", {}).get("favicon"):
    config["html"]["favicon"] = os.path.abspath(config["html"]["favicon"])
yaml.safe_dump(toc, open(f"{out}/_toc.yml", "w"))
yaml.safe_dump(config, open(f"{out}/_config.yml", "w"))
endef
export ONE_CHAPTER_BOOK

.PHONY: help setup book serve test release student-kit clean clean-grading
# `make serve PORT=8001` serves the built website on another port.
PORT ?= 8000

help:
	@echo "make setup    create .venv and install requirements.txt (once; again when it changes);"
	@echo "             torch is the CPU build (~190 MB) unless nvidia-smi is present or TORCH=cuda (~2.7 GB)"
	@echo "make book     set up, then build the website into _build/html (every chapter executes);"
	@echo "             a claim that does not hold is shown on its page, and the build ends listing it, with an error"
	@echo "make book CHAPTER=ch03"
	@echo "             build one chapter, its exercises and the reference pages into _build/chapter-<name>/_build/html"
	@echo "             (links to other chapters are left unresolved; the execution cache is shared with the whole book)"
	@echo "make serve    serve the built website at http://localhost:$(PORT)/ (PORT=8001 for another port; build it first)"
	@echo "make test     set up, then run the test suite (ARGS=\"-k ch03 -x\" passes arguments to pytest)"
	@echo "make release  regenerate the student versions in exercises/ (nbgrader) and the chapter notebooks for Colab"
	@echo "make student-kit"
	@echo "             the student kit: _build/student-kit/ and _build/student-kit.zip (student versions, course"
	@echo "             without the answers, data, the self-check; no solutions, hidden tests or rubrics)"
	@echo "make clean    remove the build outputs in _build/ (the website, execution cache, claims register);"
	@echo "             keeps .venv and everything in _grading/"
	@echo "make clean-grading CONFIRM=yes"
	@echo "             delete _grading/: the gradebook, the class list, every submission, autograded notebook,"
	@echo "             feedback page and exported grade (without CONFIRM=yes it only lists what it would delete)"

setup: $(VENV)/.installed

# Three steps, each announced; pip prints every package it collects and installs.
$(VENV)/.installed: requirements.txt pyproject.toml
	@echo "make setup [1/3]: a virtual environment in $(VENV) with an up-to-date pip"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
ifeq ($(TORCH),cpu)
	@echo "make setup [2/3]: torch $(TORCH_VERSION), CPU build (about 190 MB; \`make setup TORCH=cuda\` for a GPU)"
	if $(PIP) install --dry-run --quiet --no-deps "$(TORCH_CPU_WHEEL)" >/dev/null 2>&1; then \
	  $(PIP) install "$(TORCH_CPU_WHEEL)"; \
	else \
	  $(PIP) install "$(TORCH_CPU_WHEEL)" --extra-index-url $(TORCH_CPU_INDEX); \
	fi
else
	@echo "make setup [2/3]: torch $(TORCH_VERSION) from PyPI, with CUDA (about 2.7 GB)"
	$(PIP) install "torch==$(TORCH_VERSION)"
endif
	@echo "make setup [3/3]: the other requirements (Jupyter Book, nbgrader, ...) and the course package"
	$(PIP) install -r requirements.txt
	$(BIN)/python -c "import torch; print('make setup: done, torch', torch.__version__)"
	touch $@

book: setup _build/course-code.stamp _build/site-assets.stamp
ifeq ($(CHAPTER),)
	@# On failure, the claims that do not hold (if any) are the last thing on the screen.
	$(BIN)/jupyter-book build . -W -n --keep-going || { status=$$?; $(BIN)/python -m course.claims _build/claims.json; exit $$status; }
else
	@test -n "$(CHAPTER_NAME)" || { echo "make book: no chapter matches chapters/$(CHAPTER)*.md"; exit 2; }
	@mkdir -p _build/chapter-$(CHAPTER_NAME)
	$(BIN)/python -c "$$ONE_CHAPTER_BOOK" $(CHAPTER_NAME) _build/chapter-$(CHAPTER_NAME)
	$(BIN)/jupyter-book build . --toc _build/chapter-$(CHAPTER_NAME)/_toc.yml --config _build/chapter-$(CHAPTER_NAME)/_config.yml \
	  --path-output _build/chapter-$(CHAPTER_NAME) -n --keep-going
	@echo "make book CHAPTER=$(CHAPTER): open _build/chapter-$(CHAPTER_NAME)/_build/html/chapters/$(CHAPTER_NAME).html"
endif

# The pages link to each other and to MathJax with relative URLs: any static server will do.
serve:
	@test -f _build/html/index.html || { echo "make serve: no website in _build/html: run \`make book\` first"; exit 2; }
	@echo "make serve: http://localhost:$(PORT)/ (Ctrl-C stops it)"
	python3 -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

test: setup _build/course-code.stamp
	$(BIN)/python -m pytest $(ARGS)

# The execution cache is keyed by each chapter's own code, not by the shared code it imports:
# when course/ changes, empty the cache so that every chapter runs again, and Sphinx's saved
# environment, which would otherwise re-read (and so re-execute) only the pages whose source changed.
_build/course-code.stamp: $(wildcard course/*.py)
	rm -rf _build/.jupyter_cache _build/.doctrees
	mkdir -p _build && touch $@

# Sphinx copies _static/ and _extra/ only when some page is out of date, and cannot see changes to
# the local extension in _ext/: when any of them changes, delete the written pages so that every
# page is written again (from the cached execution and doctrees: seconds).
_build/site-assets.stamp: $(shell find _static _extra _ext -type f -not -path '*/__pycache__/*')
	if [ -d _build/html ]; then find _build/html -name '*.html' -not -path '*/mathjax/*' -delete; fi
	mkdir -p _build && touch $@

release: setup
	$(BIN)/python -m grading release
	$(BIN)/python -m course.notebooks

# The build outputs only: _grading/ holds the instructor's gradebook, class list, submissions and grades.
student-kit: setup
	$(BIN)/python -m grading kit

clean:
	rm -rf _build

clean-grading:
ifeq ($(CONFIRM),yes)
	@echo "make clean-grading: deleting _grading/ (gradebook, class list, submissions, autograded notebooks, feedback, grades):"
	@if [ -d _grading ]; then find _grading -maxdepth 2 | sort | sed 's/^/  /'; rm -rf _grading; else echo "  (no _grading/ folder)"; fi
else
	@echo "make clean-grading would delete _grading/: the gradebook (gradebook.db), the class list, every submission,"
	@echo "autograded notebook, feedback page and exported grade. Nothing was deleted. Its contents:"
	@if [ -d _grading ]; then find _grading -maxdepth 2 | sort | sed 's/^/  /'; else echo "  (no _grading/ folder)"; fi
	@echo "To delete them: make clean-grading CONFIRM=yes"
	@exit 1
endif
