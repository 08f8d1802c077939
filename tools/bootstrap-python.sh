#!/usr/bin/env bash
# Creates (or re-syncs) the project virtualenv under the home cache. The stamp
# covers pyproject.toml and the checkout path, so a fresh clone re-links the
# editable install while reusing every downloaded wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MODELDEPLOY_VENV:-$HOME/.cache/modeldeploy/venv}
PYTHON=${PYTHON:-python3}
stamp_value=$( (cat pyproject.toml; pwd) | sha256sum | cut -c1-16)
stamp_file=$VENV/.modeldeploy-stamp
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip wheel
fi
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_value" ]; then
  echo "installing modeldeploy and its extras into $VENV"
  "$VENV/bin/pip" install --quiet -e ".[serving,models,dev]"
  echo "$stamp_value" > "$stamp_file"
fi
