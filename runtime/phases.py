"""The decoder's transposed convolutions as ordinary convolutions, exactly (an OpenVINO graph rewrite).

A transposed convolution with kernel 4, stride 2 and padding 1 (every upsampling layer of the
pix2pix U-Net) is four 2x2 convolutions, one per output phase ``(a, b)`` in {0, 1}^2, whose
outputs interleave through ``DepthToSpace`` (blocks first, ONNX's DCR). Output row ``2i + a``
takes input rows ``i - 1, i`` with kernel rows ``3, 1`` when ``a = 0`` and input rows ``i, i + 1``
with kernel rows ``2, 0`` when ``a = 1``; columns likewise. The result is the same function (to
float rounding), but OpenVINO's CPU plugin runs plain convolutions on the matrix units (AMX,
AVX-512 BF16, VNNI) where it keeps transposed ones in fp32, and those are two thirds of the
generator's work. The rewrite works on the graph OpenVINO read itself: parsing the ONNX file in
Python holds the interpreter lock as long as copying every weight takes, which stalled a frame
loop by 90 ms at ngf 32 and 170 ms at ngf 64 (16-core Xeon) while a new model loaded beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import onnx

if TYPE_CHECKING:
    import openvino

# phase -> (kernel taps in input order, (pad before, pad after)) along one axis
_TAPS = {0: ((3, 1), (1, 0)), 1: ((2, 0), (0, 1))}


def _splittable(node: openvino.Node) -> bool:
    """A 2D ConvolutionBackpropData with constant kernel 4x4 weights, stride 2, padding 1, no
    dilation or output padding, and no output shape input."""
    if node.get_type_name() != "ConvolutionBackpropData" or node.get_input_size() != 2:
        return False
    weight = node.input_value(1).get_node()
    attrs = node.get_attributes()
    return (weight.get_type_name() == "Constant" and len(weight.get_output_shape(0)) == 4
            and list(weight.get_output_shape(0))[2:] == [4, 4] and list(attrs["strides"]) == [2, 2]
            and list(attrs["pads_begin"]) == [1, 1] and list(attrs["pads_end"]) == [1, 1]
            and list(attrs["dilations"]) == [1, 1] and not any(attrs["output_padding"])
            and attrs["auto_pad"] in ("explicit", "notset"))


def phase_weights(weight: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """ConvTranspose weights ``(C_in, C_out, 4, 4)`` -> ``[(a, b, Conv weights (C_out, C_in, 2, 2))]``
    in DepthToSpace DCR order."""
    phases = []
    for a in (0, 1):
        for b in (0, 1):
            rows, cols = list(_TAPS[a][0]), list(_TAPS[b][0])
            phases.append((a, b, np.ascontiguousarray(weight[:, :, rows][:, :, :, cols].transpose(1, 0, 2, 3))))
    return phases


def split_transposed_convolutions(model: openvino.Model) -> int:
    """Rewrite every splittable transposed convolution of an ``openvino.Model`` in place; returns
    how many were rewritten."""
    import openvino.opset13 as ops  # here: OpenVINO is optional, and export imports this module

    rewritten = 0
    for node in model.get_ordered_ops():
        if not _splittable(node):
            continue
        data, weight = node.input_value(0), node.input_value(1).get_node().get_data()
        outputs = []
        for a, b, kernel in phase_weights(weight):
            (top, bottom), (left, right) = _TAPS[a][1], _TAPS[b][1]
            outputs.append(ops.convolution(data, ops.constant(kernel), strides=[1, 1], pads_begin=[top, left],
                                           pads_end=[bottom, right], dilations=[1, 1]))
        interleaved = ops.depth_to_space(ops.concat(outputs, axis=1), "blocks_first", 2)
        node.output(0).replace(interleaved.output(0))
        rewritten += 1
    return rewritten


def prune_initializers(graph: onnx.GraphProto) -> None:
    """Drop the constants no node reads any more."""
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
