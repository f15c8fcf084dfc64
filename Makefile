# Two commands on a fresh machine: `make demo` (the whole job on the bundled demo scene) and `make test`.
# Each creates .venv when it is missing. torch comes from the wheels this machine keeps on disk (pip's cap file).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fourreal-installed

.PHONY: demo test bench system-deps lock

# Every install goes through constraints.txt: a fresh machine gets the versions the suite last passed with.
$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch torchvision
	$(PY) -m pip install -q -c constraints.txt -e '.[test,cluster]'
	touch $(STAMP)

# Re-resolve the dependencies from pyproject.toml's bounds alone in a scratch venv and pin the result in
# constraints.txt; then run `make test` and commit both files (README, "Dependencies").
lock:
	rm -rf .venv-lock && python3 -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q --upgrade pip
	.venv-lock/bin/python -m pip install -q -e '.[test,cluster]'
	{ echo "# The versions \`make\` installs (pip install -c constraints.txt): the set the test suite last passed with."; \
	  echo "# Update: \`make lock\` (a fresh venv from pyproject.toml's bounds alone, then pip freeze), run \`make test\`, commit."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf .venv-lock

# ns-render needs an ffmpeg binary, open3d (imported by ns-export) needs libusb, and the web export's test drives
# Debian's Chromium (headless, software WebGL).
system-deps:
	@if ! command -v ffmpeg >/dev/null 2>&1 || ! ldconfig -p | grep -q libusb-1.0 || ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg libusb-1.0-0 chromium >/dev/null; \
		else echo "Please install ffmpeg, libusb-1.0-0 and chromium (apt-get install ffmpeg libusb-1.0-0 chromium)"; exit 1; fi; \
	fi

demo: $(STAMP) system-deps
	$(VENV)/bin/fourreal demo

test: $(STAMP) system-deps
	$(PY) -m pytest -v --durations=20 -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder tests

bench: $(STAMP)
	$(PY) benchmarks/bench_rasterizer.py
	$(PY) benchmarks/bench_deformation_field.py
	$(PY) benchmarks/bench_canonical_step.py
	$(PY) benchmarks/bench_motion_step.py
	$(PY) benchmarks/bench_sds.py
	$(PY) benchmarks/bench_batch.py
