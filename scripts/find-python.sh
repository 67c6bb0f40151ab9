#!/bin/sh
# Prints the path of a Python 3.12 or newer, or says what to do and exits 1.
# $PYTHON wins when set. pyenv versions that are installed but not selected count too.
ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

for candidate in ${PYTHON:-} python3.14 python3.13 python3.12 python3 python; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if ok "$path"; then echo "$path"; exit 0; fi
done
for path in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do
  if ok "$path"; then echo "$path"; exit 0; fi
done
echo "No Python 3.12 or newer was found (Django 6.1 needs it)." >&2
echo "Install one (Debian/Ubuntu: apt-get install python3.12 python3.12-venv; or pyenv install 3.13)," >&2
echo "or point PYTHON at it: PYTHON=/path/to/python3.13 make ..." >&2
exit 1
