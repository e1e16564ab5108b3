#!/usr/bin/env bash
# Print a command that runs a working Python 3.12 interpreter, or explain and fail.
# Order: $PYTHON (if set), python3.12 on PATH, a pyenv-managed 3.12.x, /usr/bin/python3 if it is 3.12.
set -u
works() { "$@" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; }
if [ -n "${PYTHON:-}" ] && works $PYTHON; then echo "$PYTHON"; exit 0; fi
if command -v python3.12 >/dev/null 2>&1 && works python3.12; then echo python3.12; exit 0; fi
if command -v pyenv >/dev/null 2>&1; then
  v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -V | tail -1)
  if [ -n "$v" ]; then
    p="$(pyenv root)/versions/$v/bin/python3.12"
    if works "$p"; then echo "$p"; exit 0; fi
  fi
fi
if works /usr/bin/python3; then echo /usr/bin/python3; exit 0; fi
echo "robosteer needs Python 3.12 (lerobot 0.6 needs >= 3.12; ROS 2 Jazzy uses 3.12)." >&2
echo "Install it (Ubuntu 24.04: apt install python3.12-venv; elsewhere: pyenv install 3.12) or set PYTHON=/path/to/python3.12." >&2
exit 1
