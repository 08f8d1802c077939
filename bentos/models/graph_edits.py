"""ONNX graph surgery for the faulty sample models.

Each function takes a classifier graph with a float ``probabilities`` output and
returns a new model with the same input/output contract but a deliberate fault.
Used only by ``build_models.py``; pure functions over ``onnx.ModelProto``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

PROBABILITIES = "probabilities"


def _rename_output(model: onnx.ModelProto, old: str, new: str) -> None:
    """Renames the tensor ``old`` produced inside the graph to ``new``.

    The graph output entry keeps the old name so that new nodes can produce it.
    """
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def with_nonfinite_rows(
    model: onnx.ModelProto, input_name: str, feature: int, threshold: float
) -> onnx.ModelProto:
    """Probabilities become NaN for every row whose ``feature`` exceeds ``threshold``.

    The fault depends only on the input, so it is deterministic: the same rows
    always fail, and the fraction is set by choosing the threshold.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    raw = f"{PROBABILITIES}_raw"
    _rename_output(out, PROBABILITIES, raw)
    graph = out.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([feature], dtype=np.int64), "nf_start"),
            numpy_helper.from_array(np.array([feature + 1], dtype=np.int64), "nf_end"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "nf_axis"),
            numpy_helper.from_array(np.array(threshold, dtype=np.float32), "nf_threshold"),
            numpy_helper.from_array(np.array(np.nan, dtype=np.float32), "nf_nan"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Slice", [input_name, "nf_start", "nf_end", "nf_axis"], ["nf_column"]),
            helper.make_node("Greater", ["nf_column", "nf_threshold"], ["nf_mask"]),
            # [N,1] mask broadcasts over the class axis: the whole row turns NaN.
            helper.make_node("Where", ["nf_mask", "nf_nan", raw], [PROBABILITIES]),
        ]
    )
    return out


def with_busy_work(
    model: onnx.ModelProto, input_name: str, size: int, rounds: int
) -> onnx.ModelProto:
    """Adds ``rounds`` dense [size, size] matrix products that depend on the input.

    Their result is multiplied by zero and added to the probabilities, so the
    outputs are unchanged but every request pays for the work. Depending on
    the input keeps onnxruntime from folding the chain away at load time; tanh
    keeps values bounded so ``x * 0`` stays exactly zero (never ``inf * 0``).
    The weight matrix is tiled from a small block so the file stays small.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    raw = f"{PROBABILITIES}_raw"
    _rename_output(out, PROBABILITIES, raw)
    graph = out.graph
    block = 16
    if size % block:
        raise ValueError(f"size must be a multiple of {block}")
    rng = np.random.default_rng(7)
    small = (rng.standard_normal((block, block)) / np.sqrt(size)).astype(np.float32)
    graph.initializer.extend(
        [
            numpy_helper.from_array(small, "slow_block"),
            numpy_helper.from_array(
                np.array([size // block, size // block], dtype=np.int64), "slow_repeats"
            ),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "slow_zero"),
        ]
    )
    nodes = [
        helper.make_node("Tile", ["slow_block", "slow_repeats"], ["slow_w"]),
        helper.make_node("ReduceMean", [input_name], ["slow_seed"], keepdims=0),
        helper.make_node("Mul", ["slow_w", "slow_seed"], ["slow_m0"]),
    ]
    for i in range(rounds):
        nodes.append(helper.make_node("MatMul", [f"slow_m{i}", "slow_w"], [f"slow_p{i}"]))
        nodes.append(helper.make_node("Tanh", [f"slow_p{i}"], [f"slow_m{i + 1}"]))
    nodes += [
        helper.make_node("ReduceSum", [f"slow_m{rounds}"], ["slow_sum"], keepdims=0),
        helper.make_node("Mul", ["slow_sum", "slow_zero"], ["slow_nothing"]),
        helper.make_node("Add", [raw, "slow_nothing"], [PROBABILITIES]),
    ]
    graph.node.extend(nodes)
    return out
