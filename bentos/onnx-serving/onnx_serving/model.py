"""Turning verified bytes into a runnable model and its public signature.

Loading is strict: the bytes must parse as ONNX, pass ``onnx.checker`` with
full shape inference, build an onnxruntime session, use only tensor inputs and
outputs, and survive a trial run. Any failure is a ``ModelLoadError`` whose
message becomes the not-ready reason.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

log = logging.getLogger("onnx_serving.model")

# onnxruntime type strings to Open Inference Protocol datatypes.
OIP_DATATYPES: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}
NUMPY_DTYPES: dict[str, type[np.generic]] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
INT_TYPES = frozenset({"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"})
# Above this measured trial-run time a call leaves the event loop for a thread.
OFFLOAD_ABOVE_SECONDS = 0.001


class ModelLoadError(Exception):
    """The bytes are not a model this service can serve; the message says why."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 marks a dynamic dimension

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    label_output: str | None  # predicted class per row, if the model has one
    score_output: str | None  # per-class scores [rows, classes], if the model has one

    @property
    def is_classifier(self) -> bool:
        return self.score_output is not None or self.label_output is not None


def _spec(arg: Any, kind: str) -> TensorSpec:
    datatype = OIP_DATATYPES.get(arg.type)
    if datatype is None:
        hint = " (for sklearn classifiers convert with zipmap=False)" if "map" in arg.type else ""
        raise ModelLoadError(
            f"{kind} {arg.name!r} has type {arg.type}; only tensors are supported{hint}"
        )
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
    return TensorSpec(arg.name, datatype, shape)


def signature_of(session: ort.InferenceSession) -> Signature:
    inputs = tuple(_spec(a, "input") for a in session.get_inputs())
    outputs = tuple(_spec(a, "output") for a in session.get_outputs())
    label = next(
        (
            o.name
            for o in outputs
            if len(o.shape) == 1 and (o.datatype in INT_TYPES or o.datatype == "BYTES")
        ),
        None,
    )
    score = next((o.name for o in outputs if len(o.shape) == 2 and o.datatype in FLOAT_TYPES), None)
    return Signature(inputs, outputs, label, score)


def _trial_feed(spec: TensorSpec) -> np.ndarray:
    shape = tuple(1 if d < 0 else d for d in spec.shape)
    if spec.datatype == "BYTES":
        return np.full(shape, "", dtype=np.object_)
    return np.zeros(shape, dtype=NUMPY_DTYPES[spec.datatype])


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning pool threads would steal CPU from the event loop that parses
    # requests in the same process; sleeping costs only microseconds per call.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return options


@dataclass(frozen=True)
class LoadedModel:
    session: ort.InferenceSession
    signature: Signature
    sha256: str
    verified: bool
    trial_seconds: float
    offload: bool
    output_names: list[str]  # session.run wants a list; built once, not per request


def load_model(
    data: bytes, *, sha256: str, verified: bool, threads: int, offload: str
) -> LoadedModel:
    try:
        proto = onnx.load_from_string(data)
    except (DecodeError, ValueError) as exc:
        raise ModelLoadError(f"not a valid ONNX file: {exc}") from None
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise ModelLoadError(f"ONNX graph check failed: {first_line}") from None
    try:
        session = ort.InferenceSession(
            data, session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises several unrelated types here
        raise ModelLoadError(f"onnxruntime cannot load the model: {exc}") from None
    signature = signature_of(session)
    feeds = {spec.name: _trial_feed(spec) for spec in signature.inputs}
    timings: list[float] = []
    try:
        for _ in range(5):
            start = time.perf_counter()
            session.run(None, feeds)
            timings.append(time.perf_counter() - start)
    except Exception as exc:
        raise ModelLoadError(f"the model failed a trial run on zero inputs: {exc}") from None
    trial = statistics.median(timings)
    use_thread = offload == "always" or (offload == "auto" and trial > OFFLOAD_ABOVE_SECONDS)
    log.info(
        "model loaded: %d inputs, %d outputs, trial run %.3f ms, %s",
        len(signature.inputs),
        len(signature.outputs),
        trial * 1e3,
        "runs in a worker thread" if use_thread else "runs on the event loop",
    )
    return LoadedModel(
        session, signature, sha256, verified, trial, use_thread, [o.name for o in signature.outputs]
    )
