# The two commands of the README: `make run` (the system) and `make test` (its tests). Both install what they need:
# Debian packages when missing, and the Python packages of requirements-test.lock into a virtual environment, .venv,
# that make creates (never into the system's Python: Debian 12 and Ubuntu 24.04 refuse that, PEP 668).
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
STAMP := $(VENV)/.deps.stamp
LOCK_VENV := build/lock-venv
# What the lock files are made with: pip-tools, run by `make lock` (keeps the pins) or `make lock-upgrade`.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/python -m piptools compile -q --strip-extras \
	--allow-unsafe --no-emit-index-url --no-emit-find-links

# What runs inside the environment finds its commands first, as if it were activated (tests look for ruff on the PATH).
IN_VENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

.PHONY: deps system-deps test test-fast test-long lint docs audit run demo bench lock lock-upgrade

system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# The virtual environment; a half-made one (python3-venv missing) is removed, so the next run tries again.
$(VPY):
	@$(PYTHON) -m venv $(VENV) && $(VPY) -m pip --version >/dev/null || { \
	  rm -rf $(VENV); \
	  echo "could not create the virtual environment $(VENV) with $(PYTHON) -m venv:" \
	       "install python3-venv first (sudo apt-get install python3-venv)" >&2; \
	  exit 1; }

# Exactly the locked versions, then this project itself without resolving anything again; pip check fails when
# pyproject.toml needs a package that the lock lacks (refresh it with `make lock`).
$(STAMP): $(VPY) pyproject.toml $(LOCK) $(TEST_LOCK)
	$(VPY) -m pip install -q -r $(TEST_LOCK)
	$(VPY) -m pip install -q --no-deps -e .
	$(VPY) -m pip check
	@touch $(STAMP)

deps: system-deps $(STAMP)

# Two test processes, a file each at a time: most of the suite waits on browsers and services, not on the CPU.
PYTEST := $(VPY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

test: deps
	$(IN_VENV) $(PYTEST)

# The tests that need no Chromium, no service process and no waiting (markers: tests/helpers/markers.py); for a
# change to pure logic. make test before a merge.
test-fast: deps
	$(IN_VENV) $(PYTEST) -m "not browser and not services and not slow"

test-long: deps
	$(IN_VENV) $(PYTEST) --long

lint: deps
	$(VPY) -m ruff check --line-length 120 .

# pip-audit over requirements.lock, from a virtual environment of its own (tools/audit.py); fails on a known
# vulnerability that audit-exceptions.txt does not excuse, and when the vulnerability service cannot be asked, unless
# AUDIT_FLAGS="--unreachable warn" (CI's: one line then).
audit:
	$(PYTHON) tools/audit.py $(AUDIT_FLAGS)

# The docs site (mkdocs.yml, docs/) into build/site. --strict: any warning fails it (a broken link or anchor, a page
# out of the nav, a setting without a description). NO_MKDOCS_2_WARNING silences a notice Material prints on every
# build, which is no warning about these docs.
docs: deps
	NO_MKDOCS_2_WARNING=1 $(IN_VENV) $(VPY) -m mkdocs build --strict

bench: deps
	$(IN_VENV) $(VPY) bench/pipeline.py

run: deps
	$(IN_VENV) $(VPY) -m wa_queue.devstack.launcher

demo: deps
	$(IN_VENV) $(VPY) -m wa_queue.devstack.launcher --demo

# The lock files, from pyproject.toml: requirements-test.lock (everything, with the test extra; what make installs)
# first, then requirements.lock (what the program needs; the Dockerfile's) held to the same versions. Run them with
# the oldest Python the project supports (3.11): pins that only older Pythons need are then included.
$(LOCK_VENV)/bin/python:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q pip-tools

lock: $(LOCK_VENV)/bin/python
	$(PIP_COMPILE) --extra test -o $(TEST_LOCK) pyproject.toml
	$(PIP_COMPILE) -c $(TEST_LOCK) -o $(LOCK) pyproject.toml

lock-upgrade: $(LOCK_VENV)/bin/python
	$(PIP_COMPILE) --upgrade --extra test -o $(TEST_LOCK) pyproject.toml
	$(PIP_COMPILE) --upgrade -c $(TEST_LOCK) -o $(LOCK) pyproject.toml
