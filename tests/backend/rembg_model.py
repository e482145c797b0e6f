"""A tiny ONNX segmentation model in u2net's layout, so tests drive rembg's real code offline.

rembg's u2net sessions (`u2net`, `u2net_custom`) resize the image to 320x320, divide it by its
largest value, normalise each channel with ImageNet's mean and std, and feed it as the model's
first input, float32 [1, 3, 320, 320]. They read channel 0 of the first output, [1, 1, 320, 320],
rescale it to [0, 1] by its min and max, and resize it back to the image as the mask.

This model calls a pixel foreground when its colour differs from the top-left pixel's colour
(the background of a synthetic image on a plain backdrop): the sum over channels of the absolute
difference, in rembg's normalised units, above `threshold`. The output is exactly 0 or 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_SIZE = 320
OPSET = 17
IR_VERSION = 8


def build_border_contrast_model(path: Path, threshold: float = 0.3) -> Path:
    """Write the model to `path` and return it."""
    shape = [1, 3, INPUT_SIZE, INPUT_SIZE]
    constants = {
        "corner_start": np.array([0, 0], dtype=np.int64),
        "corner_end": np.array([1, 1], dtype=np.int64),
        "corner_axes": np.array([2, 3], dtype=np.int64),
        "channel_axis": np.array([1], dtype=np.int64),
        "threshold": np.array(threshold, dtype=np.float32),
    }
    nodes = [
        helper.make_node(
            "Slice", ["input.1", "corner_start", "corner_end", "corner_axes"], ["corner"]
        ),
        helper.make_node("Sub", ["input.1", "corner"], ["difference"]),
        helper.make_node("Abs", ["difference"], ["distance_per_channel"]),
        helper.make_node(
            "ReduceSum", ["distance_per_channel", "channel_axis"], ["distance"], keepdims=1
        ),
        helper.make_node("Greater", ["distance", "threshold"], ["is_foreground"]),
        helper.make_node("Cast", ["is_foreground"], ["mask"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        "border_contrast_segmenter",
        inputs=[helper.make_tensor_value_info("input.1", TensorProto.FLOAT, shape)],
        outputs=[helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, *shape[2:]])],
        initializer=[numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path
