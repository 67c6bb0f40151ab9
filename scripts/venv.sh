#!/bin/sh
# Creates .venv with a suitable Python and installs the pinned requirements file given,
# again only when that file changed.
set -eu
cd "$(dirname "$0")/.."
requirements=${1:-requirements.txt}
venv=${VENV:-.venv}

if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
  echo "Replacing $venv: its Python is older than 3.12."
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  python=$(scripts/find-python.sh)
  echo "Creating $venv with $python ($("$python" --version 2>&1))"
  "$python" -m venv "$venv"
fi
stamp="$venv/.installed-$(basename "$requirements")"
digest=$(cat requirements*.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "Installing $requirements into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$digest" > "$stamp"
fi
