#!/usr/bin/env bash
# Build the generated franka_msgs gripper actions (ros_nodes/franka_interfaces.py) once into a cache folder, so the
# test suite exercises the policy node's franka_gripper client (`make franka-msgs`; `make test` runs it first).
#   usage: tools/build-franka-msgs.sh <venv python> <cache folder>
# <cache>/toolchain: a venv with the rosidl/ament_cmake wheels of tools/franka-toolchain.txt that sees the robosteer
# venv's site-packages through a .pth file, so the ROS runtime is the venv's own (with ROS 2 in /opt/ros/jazzy that is
# the toolchain instead); <cache>/install: the result (ROBOSTEER_FRANKA_MSGS). Each is rebuilt only when its inputs
# change (package definition, toolchain pins, the venv's ROS wheel versions); the last build's log is <cache>/build.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$1
CACHE=$2
REQS=tools/franka-toolchain.txt
mkdir -p "$CACHE"
ros_versions=$("$PY" -c 'import importlib.metadata as m, sys; print(sys.version)
print(*sorted({f"{d.name}=={d.version}" for d in m.distributions() if d.name.lower().startswith("ros-")}), sep="\n")')
tc_key=$({ cat "$REQS"; echo "$ros_versions"; } | sha256sum | cut -c1-16)
key=$({ echo "$tc_key"; cat ros_nodes/franka_interfaces.py; } | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE/stamp" 2>/dev/null)" = "$key" ] && [ -d "$CACHE/install/lib" ]; then
  echo ">> franka_msgs: cached in $CACHE/install"
  exit 0
fi
start=$SECONDS
rm -rf "$CACHE/stamp" "$CACHE/src" "$CACHE/build" "$CACHE/install"
echo ">> building franka_msgs into $CACHE (first time: toolchain wheels + rosidl build, about a minute)"
build() {
  if [ -d /opt/ros/jazzy/share/rosidl_default_generators ]; then
    toolchain=/opt/ros/jazzy
  else
    toolchain=$CACHE/toolchain
    if [ "$(cat "$CACHE/toolchain.stamp" 2>/dev/null)" != "$tc_key" ]; then
      rm -rf "$toolchain" "$CACHE/toolchain.stamp"
      "$PY" -m venv "$toolchain"
      site() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
      site "$PY" >"$(site "$toolchain/bin/python")/robosteer-venv.pth"
      echo "$ros_versions" | grep '^ros-' >"$CACHE/ros-constraints.txt"
      "$toolchain/bin/pip" install --disable-pip-version-check --progress-bar off \
        -c "$CACHE/ros-constraints.txt" -r "$REQS"
      echo "$tc_key" >"$CACHE/toolchain.stamp"
    fi
  fi
  "$PY" -m ros_nodes.franka_interfaces --toolchain "$toolchain" --out "$CACHE"
}
set +e # (a function called in a condition would ignore set -e: run it on its own and read its status)
(set -e; build) >"$CACHE/build.log" 2>&1
status=$?
set -e
if [ $status -ne 0 ]; then
  rm -rf "$CACHE/install"
  tail -n 30 "$CACHE/build.log"
  echo ">> franka_msgs build FAILED after $((SECONDS - start)) s (log: $CACHE/build.log)" >&2
  exit 1
fi
echo "$key" >"$CACHE/stamp"
echo ">> franka_msgs built in $((SECONDS - start)) s: $CACHE/install"
