"""Builds the sample ONNX models used by tests, benchmarks and the demo.

Everything is trained here on synthetic data with fixed seeds, so the same
library versions always produce byte-identical files; nothing is downloaded.
Writes ``<out>/<name>.onnx``, ``<out>/samples.json`` (realistic request rows)
and ``<out>/manifest.json``::

    {"models": {"v1": {"file": "v1.onnx", "sha256": "...", "purpose": "..."}, ...}}

Usage: ``python bentos/models/build_models.py --out .local/models``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from graph_edits import with_busy_work, with_nonfinite_rows

FEATURES = 4
CLASSES = 3
INPUT_NAME = "input"
OPSET = {"": 17, "ai.onnx.ml": 3}
# Class centres in feature space; they overlap enough that probabilities spread
# over the whole [1/3, 1] range, which makes the score histogram interesting.
CENTRES = np.array(
    [[-1.2, 0.0, 0.6, 0.0], [1.2, 0.6, 0.0, -0.6], [0.0, -1.2, -0.6, 1.2]],
    dtype=np.float64,
)
NONFINITE_FEATURE = 0
NONFINITE_FRACTION = 0.15


@dataclass(frozen=True)
class Built:
    """One file of the sample set and what it is for."""

    name: str
    data: bytes
    purpose: str
    extra: dict[str, Any]


def make_data(
    seed: int, rows: int, features: int = FEATURES
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Balanced gaussian blobs, one per class (extra features are pure noise)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, size=rows)
    centres = np.zeros((CLASSES, features))
    centres[:, : min(features, FEATURES)] = CENTRES[:, : min(features, FEATURES)]
    x = centres[labels] + rng.standard_normal((rows, features))
    return x.astype(np.float32), labels.astype(np.int64)


def to_onnx(model: LogisticRegression, input_name: str, features: int, name: str) -> bytes:
    """Converts a fitted classifier to ONNX with a stable, reproducible encoding."""
    proto = convert_sklearn(
        model,
        initial_types=[(input_name, FloatTensorType([None, features]))],
        options={id(model): {"zipmap": False}},
        target_opset=OPSET,
    )
    return normalise(proto, name)


def normalise(proto: onnx.ModelProto, name: str) -> bytes:
    """Removes what skl2onnx randomises (graph name) or duplicates (opset entries)."""
    proto.graph.name = f"modeldeploy_{name}"
    proto.doc_string = ""
    proto.graph.doc_string = ""
    proto.model_version = 1
    seen: dict[str, int] = {}
    for entry in proto.opset_import:
        seen[entry.domain] = max(seen.get(entry.domain, 0), entry.version)
    del proto.opset_import[:]
    for domain, version in sorted(seen.items()):
        proto.opset_import.append(onnx.helper.make_opsetid(domain, version))
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {"modeldeploy.sample": name})
    onnx.checker.check_model(proto, full_check=True)
    encoded: bytes = proto.SerializeToString()
    return encoded


def run(data: bytes, x: NDArray[np.float32], input_name: str = INPUT_NAME) -> list[Any]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    return list(session.run(None, {input_name: x}))


def class_shares(labels: NDArray[np.int64]) -> dict[str, float]:
    counts = np.bincount(labels, minlength=CLASSES)
    return {str(k): round(float(c) / len(labels), 3) for k, c in enumerate(counts)}


def build(samples: NDArray[np.float32]) -> list[Built]:
    x1, y1 = make_data(seed=1, rows=3000)
    v1 = LogisticRegression(C=1.0, max_iter=1000).fit(x1, y1)
    v1_bytes = to_onnx(v1, INPUT_NAME, FEATURES, "v1")

    # v2 sees more data and a little less regularisation: a genuine, modest
    # improvement whose predictions stay close to v1's.
    x2, y2 = make_data(seed=2, rows=12000)
    v2 = LogisticRegression(C=4.0, max_iter=1000).fit(x2, y2)
    v2_bytes = to_onnx(v2, INPUT_NAME, FEATURES, "v2")

    # Drift: v1 with a strong prior towards class 0 (as if trained on skewed
    # labels). Same contract, clearly different output distribution.
    drift = LogisticRegression(C=1.0, max_iter=1000).fit(x1, y1)
    drift.intercept_ = drift.intercept_ + np.array([2.5, 0.0, -1.0])
    drift_bytes = to_onnx(drift, INPUT_NAME, FEATURES, "drift")

    slow_proto = onnx.load_from_string(v1_bytes)
    slow_bytes = normalise(with_busy_work(slow_proto, INPUT_NAME, size=512, rounds=12), "slow")

    threshold = float(
        np.quantile(
            make_data(seed=3, rows=20000)[0][:, NONFINITE_FEATURE], 1.0 - NONFINITE_FRACTION
        )
    )
    nonfinite_proto = with_nonfinite_rows(
        onnx.load_from_string(v1_bytes), INPUT_NAME, NONFINITE_FEATURE, threshold
    )
    nonfinite_bytes = normalise(nonfinite_proto, "nonfinite")

    x6, y6 = make_data(seed=4, rows=3000, features=6)
    wide = LogisticRegression(C=1.0, max_iter=1000).fit(x6, y6)
    contract_bytes = to_onnx(wide, "features", 6, "contract-break")

    # A download cut short, followed by junk: not parseable as ONNX.
    corrupt_bytes = v1_bytes[: len(v1_bytes) // 2] + bytes(range(256)) * 4

    labels = {
        k: run(b, samples)[0]
        for k, b in [("v1", v1_bytes), ("v2", v2_bytes), ("drift", drift_bytes)]
    }
    agreement = float(np.mean(labels["v1"] == labels["v2"]))
    nonfinite_rows = float(np.mean(~np.isfinite(run(nonfinite_bytes, samples)[1]).all(axis=1)))
    check_builds(
        labels=labels,
        agreement=agreement,
        nonfinite_rows=nonfinite_rows,
        v1_bytes=v1_bytes,
        slow_bytes=slow_bytes,
        samples=samples,
    )

    contract = {
        "input": {"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, FEATURES]},
        "classes": CLASSES,
    }
    return [
        Built(
            "v1",
            v1_bytes,
            "baseline classifier: the stable version in canary tests",
            {**contract, "class_shares": class_shares(labels["v1"])},
        ),
        Built(
            "v2",
            v2_bytes,
            "improved classifier, same contract, predictions close to v1 "
            "(a canary that should be promoted)",
            {
                **contract,
                "class_shares": class_shares(labels["v2"]),
                "agreement_with_v1": round(agreement, 3),
            },
        ),
        Built(
            "drift",
            drift_bytes,
            "same contract, output distribution clearly shifted "
            "towards class 0 (prediction drift check must fail)",
            {**contract, "class_shares": class_shares(labels["drift"])},
        ),
        Built(
            "slow",
            slow_bytes,
            "v1's predictions with tens of milliseconds of extra "
            "compute per request (latency check must fail)",
            contract,
        ),
        Built(
            "nonfinite",
            nonfinite_bytes,
            f"v1 whose probabilities are NaN for rows with "
            f"feature {NONFINITE_FEATURE} > {threshold:.4f}, about "
            f"{round(nonfinite_rows * 100)}% of sample rows (error-rate check must fail)",
            {**contract, "nonfinite_row_share": round(nonfinite_rows, 3)},
        ),
        Built(
            "contract-break",
            contract_bytes,
            "input 'features' FP32 [-1, 6] instead of "
            "'input' [-1, 4] (contract check must stop the rollout)",
            {
                "input": {"name": "features", "datatype": "FP32", "shape": [-1, 6]},
                "classes": CLASSES,
            },
        ),
        Built(
            "corrupt",
            corrupt_bytes,
            "truncated ONNX file with junk appended; its sha256 "
            "is correct, the graph check fails (must never become ready)",
            {},
        ),
    ]


def check_builds(
    *,
    labels: dict[str, NDArray[np.int64]],
    agreement: float,
    nonfinite_rows: float,
    v1_bytes: bytes,
    slow_bytes: bytes,
    samples: NDArray[np.float32],
) -> None:
    """Fails the build if a sample model lost the property tests rely on."""
    if agreement < 0.9:
        raise SystemExit(f"v2 agrees with v1 on only {agreement:.1%} of rows")
    v1_share = np.bincount(labels["v1"], minlength=CLASSES) / len(samples)
    drift_share = np.bincount(labels["drift"], minlength=CLASSES) / len(samples)
    if float(np.abs(v1_share - drift_share).sum()) < 0.5:
        raise SystemExit(f"drift model too close to v1: {v1_share} vs {drift_share}")
    if not 0.05 <= nonfinite_rows <= 0.4:
        raise SystemExit(f"nonfinite model fails on {nonfinite_rows:.1%} of rows")
    v1_out, slow_out = run(v1_bytes, samples), run(slow_bytes, samples)
    if not (np.array_equal(v1_out[0], slow_out[0]) and np.allclose(v1_out[1], slow_out[1])):
        raise SystemExit("slow model's predictions differ from v1's")


def write_atomic(path: Path, data: bytes) -> None:
    """Readers (other test sessions) never see a half-written file."""
    if path.exists() and path.read_bytes() == data:
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    samples, _ = make_data(seed=42, rows=512)
    built = build(samples)
    manifest: dict[str, Any] = {"models": {}}
    for item in built:
        file_name = f"{item.name}.onnx"
        write_atomic(out / file_name, item.data)
        manifest["models"][item.name] = {
            "file": file_name,
            "sha256": hashlib.sha256(item.data).hexdigest(),
            "purpose": item.purpose,
            "bytes": len(item.data),
            **item.extra,
        }
    samples_doc = {"input": np.round(samples, 4).tolist()}
    write_atomic(out / "samples.json", json.dumps(samples_doc).encode())
    manifest["samples"] = {
        "file": "samples.json",
        "purpose": f"{len(samples)} request rows from the training distribution "
        f"(key = input name) for load generators and tests",
    }
    write_atomic(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    for item in built:
        print(f"{item.name:15} {len(item.data):7d} bytes  {out / (item.name + '.onnx')}")
    print(f"manifest       {out / 'manifest.json'}")


if __name__ == "__main__":
    main()
