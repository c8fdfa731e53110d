# llmsizing developer entry points.
#   make venv      create .venv and install the package with its runtime dependencies only (idempotent;
#                  what report servers, cron and CI need: no torch, transformers or peft)
#   make sysdeps   install the Debian libraries WeasyPrint needs, plus poppler-utils
#   make test      add the test extra to .venv (torch CPU, transformers, peft, pytest) and run the test suite
#   make lab       add the lab extra (JupyterLab) to .venv and open notebooks/ with the project's kernel
#   make check-install  build the wheel, install it into a fresh venv, run it from an empty folder
#   make test      check the report translations, run the test suite
#   make i18n      extract, merge and compile the report translations
#   make report    render the default scenario (DEFAULT_PARAMS) to reports/
#   make bench     run the benchmarks
#   make golden    accept changed golden results (review git diff tests/golden)
#   make refresh   rebuild the reports whose inputs changed
#   make clean     remove caches and build leftovers (keeps .venv and reports/)
#   make distclean clean, and remove .venv too

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
# Stamps live inside the venv: deleting .venv forces a reinstall, editing
# pyproject.toml forces a reinstall, anything else is a no-op. One stamp per extra:
# runtime (make venv/report/refresh), test (make test), lab (make lab).
VENV_STAMP := $(VENV)/.llmsizing-installed.stamp
TEST_STAMP := $(VENV)/.llmsizing-test.stamp
LAB_STAMP := $(VENV)/.llmsizing-lab.stamp

DEFAULT_PARAMS ?= params/deepseek-r1-family.yaml

# Shared libraries WeasyPrint loads through cffi (Pango >= 1.44, HarfBuzz with
# its font subsetter, fontconfig), the report fonts (DejaVu; Noto Sans CJK for
# Chinese reports and CJK customer names, embedded in the PDF), and poppler-utils
# (pdftotext/pdftoppm/pdffonts) for reading the PDFs back in the tests.
SYSDEPS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 \
           libfontconfig1 fonts-dejavu-core fonts-noto-cjk poppler-utils

.PHONY: venv sysdeps test report lab check-install bench golden refresh clean distclean i18n i18n-check

venv: $(VENV_STAMP)

# PIP_QUIET_FILTER hides one harmless warning per package that this machine's pip
# configuration prints (a local mirror listing folders that do not exist).
PIP_QUIET_FILTER := { grep -v 'is ignored: it is neither a file nor a directory' || true; }

$(VENV_STAMP): pyproject.toml
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip 2>&1 | $(PIP_QUIET_FILTER)
	$(VPY) -m pip install --quiet -e . 2>&1 | $(PIP_QUIET_FILTER)
	@touch $@

$(TEST_STAMP): $(VENV_STAMP)
	$(VPY) -m pip install --quiet -e '.[test]' 2>&1 | $(PIP_QUIET_FILTER)
	@touch $@

$(LAB_STAMP): $(VENV_STAMP)
	$(VPY) -m pip install --quiet -e '.[lab]' 2>&1 | $(PIP_QUIET_FILTER)
	@touch $@

sysdeps:
	@missing=""; \
	if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "sysdeps: not a Debian system; install Pango >= 1.44, HarfBuzz, fontconfig, DejaVu fonts and poppler-utils yourself."; \
	  exit 0; \
	fi; \
	for p in $(SYSDEPS); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "sysdeps: all present"; exit 0; fi; \
	if [ "$$(id -u)" = "0" ]; then \
	  echo "sysdeps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "sysdeps: missing Debian packages:$$missing"; \
	  echo "sysdeps: run as root: apt-get update && apt-get install -y$$missing"; \
	fi

test: $(TEST_STAMP) sysdeps i18n-check
	$(VPY) -m pytest -q tests

# JupyterLab from .venv: its default kernel (python3, the kernel the notebooks name) is the
# project's interpreter, so an edited assumption runs against this checkout's library.
lab: $(LAB_STAMP)
	$(VENV)/bin/jupyter lab notebooks/

# Build the wheel, install it into a fresh venv (runtime dependencies only), build a report and
# read a Hugging Face cache from an empty folder. See tools/check_install.sh.
check-install: sysdeps
	PYTHON=$(PYTHON) bash tools/check_install.sh

# Report translations (lib/llmsizing/report/locale): `make i18n` extracts the English msgids, merges them
# into each .po (translate what is new) and compiles the .mo; `make i18n-check` fails when a msgid is
# untranslated or the compiled catalog is stale.
REPORT_DIR := lib/llmsizing/report
i18n: venv
	$(VENV)/bin/pybabel extract -F $(REPORT_DIR)/babel.cfg -k N_ -k ngettext:1,2 --no-location --omit-header \
	  -o $(REPORT_DIR)/locale/llmsizing.pot $(REPORT_DIR)
	$(VENV)/bin/pybabel update -i $(REPORT_DIR)/locale/llmsizing.pot -d $(REPORT_DIR)/locale -D llmsizing --no-location
	$(VENV)/bin/pybabel compile -d $(REPORT_DIR)/locale -D llmsizing

i18n-check: venv
	PYTHONPATH=lib $(VPY) -m llmsizing.report.i18n

report: venv sysdeps
	$(VENV)/bin/llmsizing run $(DEFAULT_PARAMS)

bench: $(TEST_STAMP) sysdeps
	$(VPY) benchmarks/run.py

# Accept modelling changes deliberately: rewrite tests/golden/*.json, then review `git diff tests/golden`.
golden: venv sysdeps
	$(VPY) -m llmsizing.report.golden --update

# Rebuild every report whose inputs changed (see docs/refresh.md).
refresh: venv sysdeps
	$(VENV)/bin/llmsizing refresh params/ -j 2

clean:
	rm -rf build dist .pytest_cache .hypothesis lib/*.egg-info *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
