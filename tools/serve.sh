#!/usr/bin/env bash
# Serve one ONNX model locally with the onnx-serving bento (what `make serve` runs).
#
#   tools/serve.sh MODEL [PORT]      MODEL: a file path or a file://, http(s):// or s3:// URI
#
# Every MODEL_* and limit variable from bentos/onnx-serving/README.md passes
# through (MODEL_NAME, MODEL_VERSION, MODEL_SHA256, MAX_REQUEST_BYTES, ...).
# For a local file with no MODEL_SHA256, the sha256 listed for it in a
# manifest.json beside it (as `make models` writes) is used, so the sample
# models are served verified. The script execs bentoml: its pid is the server's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
VENV=${MODELDEPLOY_VENV:-$HOME/.cache/modeldeploy/venv}
model=${1:?usage: tools/serve.sh MODEL [PORT]}
port=${2:-3000}

if [ ! -x "$VENV/bin/bentoml" ]; then
  echo "serve.sh: $VENV/bin/bentoml not found; run 'make venv' first" >&2
  exit 1
fi

case "$model" in
  *://*) uri=$model ;;
  *)
    if [ ! -f "$model" ]; then
      echo "serve.sh: no model file '$model' (build the samples with 'make models')" >&2
      exit 1
    fi
    path=$(realpath "$model")
    uri="file://$path"
    manifest="$(dirname "$path")/manifest.json"
    if [ -z "${MODEL_SHA256:-}" ] && [ -f "$manifest" ]; then
      MODEL_SHA256=$("$VENV/bin/python" - "$manifest" "$(basename "$path")" <<'EOF'
import json, sys
models = json.load(open(sys.argv[1])).get("models", {})
print(next((m["sha256"] for m in models.values() if m.get("file") == sys.argv[2]), ""))
EOF
)
      export MODEL_SHA256
    fi
    ;;
esac

base=${uri##*/}
export MODEL_URI=$uri
export MODEL_NAME=${MODEL_NAME:-${base%.onnx}}
export MODEL_VERSION=${MODEL_VERSION:-${base%.onnx}}
# BentoML keeps its Prometheus multiprocess files under BENTOML_HOME and wipes
# them at start: two servers sharing one home would erase each other's
# metrics, so each port gets its own unless the caller chose one.
export BENTOML_HOME=${BENTOML_HOME:-${TMPDIR:-/tmp}/onnx-serving-$port}
export BENTOML_DO_NOT_TRACK=${BENTOML_DO_NOT_TRACK:-true}
mkdir -p "$BENTOML_HOME"

echo "serving $MODEL_NAME ($MODEL_VERSION) from $MODEL_URI on http://${HOST:-127.0.0.1}:$port" >&2
exec "$VENV/bin/bentoml" serve service:OnnxServing \
  --working-dir "$root/bentos/onnx-serving" --host "${HOST:-127.0.0.1}" --port "$port"
