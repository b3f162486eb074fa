#!/usr/bin/env python3
"""Checks ONNX models with onnx.checker (full_check: strict shape inference
too), as Debian's python3-onnx does it, and prints one JSON line per model:
its input and output (name, then each dimension's value or symbol) and its
metadata_props. Used by resgo's onnx tests.

    python3 scripts/check_onnx.py MODEL.onnx...
"""
import json
import sys

import onnx


def dims(value_info):
    shape = value_info.type.tensor_type.shape
    return [value_info.name] + [d.dim_param or d.dim_value for d in shape.dim]


for path in sys.argv[1:]:
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    graph = model.graph
    print(json.dumps({
        "input": dims(graph.input[0]),
        "output": dims(graph.output[0]),
        "metadata": {p.key: p.value for p in model.metadata_props},
    }))
