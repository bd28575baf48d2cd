# One entry point for readers, students, instructors and CI. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
# nbgrader calls `alembic` as a subprocess: the environment's bin folder must be on PATH.
export PATH := $(BIN):$(PATH)

.PHONY: help setup book test release clean

help:
	@echo "make setup    create .venv and install requirements.txt (once; again when it changes)"
	@echo "make book     set up, then build the website into _build/html (every chapter executes)"
	@echo "make test     set up, then run the test suite"
	@echo "make release  regenerate the student versions in exercises/ (nbgrader) and the chapter notebooks for Colab"
	@echo "make clean    remove the build outputs (keeps .venv)"

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

book: setup _build/course-code.stamp _build/site-assets.stamp
	$(BIN)/jupyter-book build . -W -n --keep-going

test: setup _build/course-code.stamp
	$(BIN)/python -m pytest

# The execution cache is keyed by each chapter's own code, not by the shared code it imports:
# when course/ changes, empty the cache so that every chapter runs again.
_build/course-code.stamp: $(wildcard course/*.py)
	rm -rf _build/.jupyter_cache
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

clean:
	rm -rf _build _grading
