# The two commands of the README: `make run` (the system) and `make test` (its tests). Both install what they need.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
STAMP := .deps.stamp
APT_PACKAGES := redis-server chromium chromium-driver

.PHONY: deps system-deps test test-long lint run demo bench

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

$(STAMP): pyproject.toml
	$(PIP) install -q -e '.[test]'
	@touch $(STAMP)

deps: system-deps $(STAMP)

# Two test processes, a file each at a time: most of the suite waits on browsers and services, not on the CPU.
PYTEST := $(PYTHON) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

test: deps
	$(PYTEST)

test-long: deps
	$(PYTEST) --long

lint: deps
	$(PYTHON) -m pip install -q ruff && $(PYTHON) -m ruff check --line-length 120 .

bench: deps
	$(PYTHON) bench/pipeline.py

run: deps
	$(PYTHON) -m wa_queue.stack

demo: deps
	$(PYTHON) -m wa_queue.stack --demo
