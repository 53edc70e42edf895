"""The decoder's transposed convolutions as ordinary convolutions, exactly (an ONNX graph rewrite).

A ``ConvTranspose`` with kernel 4, stride 2 and padding 1 (every upsampling layer of the pix2pix
U-Net) is four 2x2 convolutions, one per output phase ``(a, b)`` in {0, 1}^2, whose outputs
interleave through ``DepthToSpace`` (mode DCR). Output row ``2i + a`` takes input rows
``i - 1, i`` with kernel rows ``3, 1`` when ``a = 0`` and input rows ``i, i + 1`` with kernel rows
``2, 0`` when ``a = 1``; columns likewise. The result is the same function (to float rounding),
but OpenVINO's CPU plugin runs plain convolutions on the matrix units (AMX, AVX-512 BF16, VNNI)
where it keeps transposed ones in fp32, and those are two thirds of the generator's work.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

# phase -> (kernel taps in input order, (pad before, pad after)) along one axis
_TAPS = {0: ((3, 1), (1, 0)), 1: ((2, 0), (0, 1))}


def _splittable(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> bool:
    """A 2D ConvTranspose with kernel 4, stride 2, padding 1, no groups, dilation or output padding."""
    if node.op_type != "ConvTranspose" or node.input[1] not in constants:
        return False
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    return (list(attrs.get("kernel_shape", [])) == [4, 4] and list(attrs.get("strides", [])) == [2, 2]
            and list(attrs.get("pads", [])) == [1, 1, 1, 1] and auto_pad in (b"NOTSET", "NOTSET")
            and attrs.get("group", 1) == 1 and list(attrs.get("dilations", [1, 1])) == [1, 1]
            and not any(attrs.get("output_padding", [])) and not attrs.get("output_shape")
            and len(constants[node.input[1]].dims) == 4)


def phase_weights(weight: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """ConvTranspose weights ``(C_in, C_out, 4, 4)`` -> ``[(a, b, Conv weights (C_out, C_in, 2, 2))]``
    in DepthToSpace DCR order."""
    phases = []
    for a in (0, 1):
        for b in (0, 1):
            rows, cols = list(_TAPS[a][0]), list(_TAPS[b][0])
            phases.append((a, b, np.ascontiguousarray(weight[:, :, rows][:, :, :, cols].transpose(1, 0, 2, 3))))
    return phases


def split_transposed_convolutions(proto: onnx.ModelProto) -> int:
    """Rewrite every splittable ConvTranspose of ``proto`` in place; returns how many were rewritten."""
    graph = proto.graph
    constants = {t.name: t for t in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in graph.node:
        if not _splittable(node, constants):
            nodes.append(node)
            continue
        out = node.output[0]
        weight = numpy_helper.to_array(constants[node.input[1]])
        outputs = []
        for a, b, kernel in phase_weights(weight):
            name = f"{out}/phase{a}{b}"
            graph.initializer.append(numpy_helper.from_array(kernel, f"{name}/weight"))
            (top, bottom), (left, right) = _TAPS[a][1], _TAPS[b][1]
            nodes.append(helper.make_node("Conv", [node.input[0], f"{name}/weight", *node.input[2:3]], [name],
                                          name=name, kernel_shape=[2, 2], strides=[1, 1],
                                          pads=[top, left, bottom, right]))
            outputs.append(name)
        nodes.append(helper.make_node("Concat", outputs, [f"{out}/phases"], name=f"{out}/phases", axis=1))
        nodes.append(helper.make_node("DepthToSpace", [f"{out}/phases"], [out], name=f"{out}/interleave",
                                      blocksize=2, mode="DCR"))
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    prune_initializers(graph)
    return rewritten


def prune_initializers(graph: onnx.GraphProto) -> None:
    """Drop the constants no node reads any more."""
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
