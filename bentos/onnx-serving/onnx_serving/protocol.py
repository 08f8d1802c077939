"""Request validation and response encoding for the Open Inference Protocol and /predict.

Pure functions over decoded JSON and the model's ``Signature``: no I/O, no
framework. Every way a request can be wrong raises ``RequestError`` with the
HTTP status and a message naming the problem, so the web layer never has to
guess and never turns a client mistake into a 5xx.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from .model import FLOAT_TYPES, INT_TYPES, NUMPY_DTYPES, Signature, TensorSpec


class RequestError(Exception):
    """A client error: ``status`` is 400, 404, 413 or 422."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class OutputError(Exception):
    """The model produced something it must not (NaN/inf): a server-side failure."""


@dataclass(frozen=True)
class Limits:
    max_batch_rows: int
    allow_nonfinite_inputs: bool


@dataclass(frozen=True)
class InferRequest:
    feeds: dict[str, np.ndarray]
    outputs: tuple[str, ...] | None  # requested outputs, None for all
    request_id: str | None


_KIND_NAMES = {
    "b": "booleans",
    "i": "integers",
    "u": "integers",
    "f": "non-integer numbers",
    "U": "strings",
    "O": "nulls, objects or mixed types",
}


def decode_json(body: bytes) -> Any:
    if not body:
        raise RequestError(400, "empty request body; expected a JSON object")
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise RequestError(400, "malformed JSON: the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deeply") from None


def _shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _coerce(spec: TensorSpec, data: Any, where: str) -> np.ndarray:
    """Converts JSON data to the input's dtype, refusing anything that would need guessing."""
    if not isinstance(data, list):
        raise RequestError(422, f"{where}: data must be a JSON array, got {type(data).__name__}")
    try:
        raw = np.asarray(data)
    except (ValueError, OverflowError):
        raise RequestError(
            422, f"{where}: data is ragged (nested arrays must all have the same length)"
        ) from None
    kind = raw.dtype.kind
    if raw.size == 0:
        return np.zeros(raw.shape, dtype=NUMPY_DTYPES[spec.datatype])
    if spec.datatype in FLOAT_TYPES:
        ok = kind in "fiu"
    elif spec.datatype in INT_TYPES:
        ok = kind in "iu"
    elif spec.datatype == "BOOL":
        ok = kind == "b"
    else:  # BYTES
        ok = kind == "U"
    if not ok:
        got = _KIND_NAMES.get(kind, f"values of kind {kind!r}")
        raise RequestError(422, f"{where}: expected {spec.datatype} values, got {got}")
    target = NUMPY_DTYPES[spec.datatype]
    if spec.datatype in INT_TYPES:
        info = np.iinfo(cast("type[np.integer[Any]]", target))
        if int(raw.min()) < info.min or int(raw.max()) > info.max:
            raise RequestError(422, f"{where}: value out of {spec.datatype} range")
    if spec.datatype == "BYTES":
        return raw.astype(np.object_)
    with np.errstate(over="ignore", invalid="ignore"):
        return raw.astype(target)


def _check_shape(spec: TensorSpec, shape: tuple[int, ...], where: str, limits: Limits) -> None:
    expected = spec.shape
    if len(shape) != len(expected) or any(
        e >= 0 and e != g for e, g in zip(expected, shape, strict=True)
    ):
        raise RequestError(
            422,
            f"{where}: shape {_shape_text(shape)} does not match the model's "
            f"{_shape_text(expected)} (-1 = any size)",
        )
    if shape and shape[0] == 0:
        raise RequestError(422, f"{where}: the batch has no rows")
    if shape and expected and expected[0] < 0 and shape[0] > limits.max_batch_rows:
        raise RequestError(
            413,
            f"{where}: {shape[0]} rows exceed the limit of {limits.max_batch_rows} "
            "(MAX_BATCH_ROWS); split the batch",
        )


def _check_finite(spec: TensorSpec, array: np.ndarray, where: str, limits: Limits) -> None:
    if limits.allow_nonfinite_inputs or spec.datatype not in FLOAT_TYPES:
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = ~finite.reshape(array.shape[0], -1).all(axis=1) if array.ndim else np.array([True])
    rows = np.flatnonzero(bad)[:5].tolist()
    raise RequestError(
        422,
        f"{where}: non-finite value (NaN, Infinity or beyond {spec.datatype} range) in "
        f"row(s) {rows}; this model needs finite numbers",
    )


def _tensor(spec: TensorSpec, data: Any, where: str, limits: Limits) -> np.ndarray:
    array = _coerce(spec, data, where)
    _check_shape(spec, array.shape, where, limits)
    _check_finite(spec, array, where, limits)
    return array


def parse_infer(doc: Any, signature: Signature, limits: Limits) -> InferRequest:
    """Validates an Open Inference Protocol v2 REST inference request."""
    if not isinstance(doc, dict):
        raise RequestError(400, "the request body must be a JSON object with 'inputs'")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(400, "'inputs' must be a non-empty array of input tensors")
    by_name = {spec.name: spec for spec in signature.inputs}
    feeds: dict[str, np.ndarray] = {}
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise RequestError(
                400, f"inputs[{i}] must be an object with name, shape, datatype, data"
            )
        name = item.get("name")
        if not isinstance(name, str):
            raise RequestError(400, f"inputs[{i}]: 'name' is required and must be a string")
        spec = by_name.get(name)
        if spec is None:
            raise RequestError(
                422, f"unknown input {name!r}; the model's inputs are {sorted(by_name)}"
            )
        if name in feeds:
            raise RequestError(400, f"input {name!r} is given more than once")
        where = f"input {name!r}"
        datatype = item.get("datatype")
        if not isinstance(datatype, str):
            raise RequestError(
                400, f"{where}: 'datatype' is required (the model wants {spec.datatype})"
            )
        if datatype.upper() != spec.datatype:
            raise RequestError(
                422, f"{where}: datatype {datatype} does not match the model's {spec.datatype}"
            )
        shape = item.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise RequestError(400, f"{where}: 'shape' must be an array of non-negative integers")
        if "data" not in item:
            raise RequestError(400, f"{where}: 'data' is required")
        array = _coerce(spec, item["data"], where)
        if array.ndim == 1 and len(shape) != 1:
            # Flat row-major data, the protocol's canonical form.
            if array.size != math.prod(shape):
                raise RequestError(
                    422, f"{where}: {array.size} values cannot fill shape {_shape_text(shape)}"
                )
            array = array.reshape(shape)
        elif list(array.shape) != shape:
            raise RequestError(
                422,
                f"{where}: data has shape {_shape_text(array.shape)} but 'shape' says "
                f"{_shape_text(shape)}",
            )
        _check_shape(spec, array.shape, where, limits)
        _check_finite(spec, array, where, limits)
        feeds[name] = array
    missing = sorted(set(by_name) - set(feeds))
    if missing:
        raise RequestError(422, f"missing input(s) {missing}")
    return InferRequest(feeds, _requested_outputs(doc, signature), _request_id(doc))


def _requested_outputs(doc: dict[str, Any], signature: Signature) -> tuple[str, ...] | None:
    requested = doc.get("outputs")
    if requested is None:
        return None
    names = {o.name for o in signature.outputs}
    if not isinstance(requested, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in requested
    ):
        raise RequestError(400, "'outputs' must be an array of objects with a 'name'")
    chosen = tuple(o["name"] for o in requested)
    unknown = sorted(set(chosen) - names)
    if unknown:
        raise RequestError(
            422, f"unknown output(s) {unknown}; the model's outputs are {sorted(names)}"
        )
    return chosen


def _request_id(doc: dict[str, Any]) -> str | None:
    value = doc.get("id")
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(400, "'id' must be a string")
    return value


def parse_predict(doc: Any, signature: Signature, limits: Limits) -> dict[str, np.ndarray]:
    """Validates the simple JSON form: ``{"instances": rows}`` or ``{"inputs": {name: rows}}``."""
    usage = 'expected {"instances": [[...], ...]} or {"inputs": {"<input name>": [...]}}'
    if not isinstance(doc, dict):
        raise RequestError(400, f"the request body must be a JSON object; {usage}")
    by_name = {spec.name: spec for spec in signature.inputs}
    if "instances" in doc:
        if len(by_name) != 1:
            raise RequestError(
                422, f'this model has inputs {sorted(by_name)}; send {{"inputs": {{name: data}}}}'
            )
        spec = signature.inputs[0]
        return {spec.name: _tensor(spec, doc["instances"], "instances", limits)}
    named = doc.get("inputs")
    if not isinstance(named, dict):
        raise RequestError(400, usage)
    unknown = sorted(set(named) - set(by_name))
    if unknown:
        raise RequestError(
            422, f"unknown input(s) {unknown}; the model's inputs are {sorted(by_name)}"
        )
    missing = sorted(set(by_name) - set(named))
    if missing:
        raise RequestError(422, f"missing input(s) {missing}")
    return {
        name: _tensor(spec, named[name], f"input {name!r}", limits)
        for name, spec in by_name.items()
    }


def check_outputs(signature: Signature, outputs: dict[str, np.ndarray]) -> None:
    """NaN or infinity from the model is its fault, never the client's."""
    for spec in signature.outputs:
        if spec.datatype not in FLOAT_TYPES:
            continue
        array = outputs[spec.name]
        finite = np.isfinite(array)
        if not finite.all():
            rows = array.shape[0] if array.ndim else 1
            bad = int((~finite.reshape(rows, -1).all(axis=1)).sum()) if array.ndim else 1
            raise OutputError(
                f"the model produced non-finite values (NaN or Inf) in output {spec.name!r} "
                f"for {bad} of {rows} row(s)"
            )


def predicted_classes(
    signature: Signature, outputs: dict[str, np.ndarray]
) -> tuple[list[Any], np.ndarray | None]:
    """Per-row predicted label and top score, for the response and the distribution metrics."""
    score_name = signature.score_output
    matrix = outputs[score_name] if score_name is not None else None
    scores = matrix.max(axis=1) if matrix is not None and matrix.shape[1] > 0 else None
    if signature.label_output is not None:
        labels: list[Any] = outputs[signature.label_output].reshape(-1).tolist()
    elif matrix is not None and scores is not None:
        labels = matrix.argmax(axis=1).tolist()
    else:
        labels = []
    return labels, scores


def infer_response(
    model_name: str,
    model_version: str,
    signature: Signature,
    outputs: dict[str, np.ndarray],
    request: InferRequest,
) -> dict[str, Any]:
    names = request.outputs or tuple(o.name for o in signature.outputs)
    specs = {o.name: o for o in signature.outputs}
    body: dict[str, Any] = {
        "model_name": model_name,
        "model_version": model_version,
        "outputs": [
            {
                "name": name,
                "datatype": specs[name].datatype,
                "shape": list(outputs[name].shape),
                "data": outputs[name].reshape(-1).tolist(),
            }
            for name in names
        ],
    }
    if request.request_id is not None:
        body["id"] = request.request_id
    return body


def predict_response(
    model_name: str,
    model_version: str,
    signature: Signature,
    outputs: dict[str, np.ndarray],
    labels: list[Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if signature.is_classifier:
        body["predictions"] = labels
    body["outputs"] = {name: value.tolist() for name, value in outputs.items()}
    return body
