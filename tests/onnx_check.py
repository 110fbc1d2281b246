#!/usr/bin/env python3
"""Checks an ONNX model `convoy export onnx` wrote against `convoy predict`'s outputs, with two
consumers convoy does not control: onnx.checker (full check, shapes inferred) and OpenCV's dnn
module, run on the dataset's raw /x (as float32) at batch 1 and at the whole set (the batch
dimension is dynamic). Also the contract of docs/interop.md: opset 13, IR 7, producer convoy,
input "input" (N, ...) and output "probabilities" (N, K).

usage: onnx_check.py MODEL.onnx DATA.h5 PRED.h5 [--logits]
  PRED.h5: predict --out's /predictions; --logits: they are a from_logits model's logits (the
  export ends in the softmax or sigmoid that predict's CSV applies). Exits 1 when any check
  fails, when OpenCV's probabilities differ from convoy's by more than 1e-5, or when the outputs
  hardly vary over the samples (a comparison that could not see a wrong layer)."""
import sys

import h5py
import numpy as np
import onnx
import cv2

TOL = 1e-5


def probabilities(p, logits):
    if not logits:
        return p
    if p.shape[1] == 1:
        return 1.0 / (1.0 + np.exp(-p))
    e = np.exp(p - p.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    logits = "--logits" in sys.argv
    path, data, pred = args
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    problems = []
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets != {"": 13} or model.ir_version != 7 or model.producer_name != "convoy":
        problems.append(f"header: opsets {opsets}, ir_version {model.ir_version}, producer {model.producer_name!r}")
    g = model.graph
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    x = h5py.File(data, "r")["/x"][()].astype(np.float32)
    p = probabilities(h5py.File(pred, "r")["/predictions"][()].astype(np.float64), logits)
    if [i.name for i in g.input] != ["input"] or dims(g.input[0]) != ["N", *x.shape[1:]]:
        problems.append(f"input {[(i.name, dims(i)) for i in g.input]}, wanted input {['N', *x.shape[1:]]}")
    if [o.name for o in g.output] != ["probabilities"] or dims(g.output[0]) != ["N", p.shape[1]]:
        problems.append(f"output {[(o.name, dims(o)) for o in g.output]}, wanted probabilities ['N', {p.shape[1]}]")
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(x[:1])
    one = net.forward().reshape(1, -1)
    net.setInput(x)
    q = net.forward().reshape(p.shape)
    diff, diff1 = float(np.abs(q - p).max()), float(np.abs(one - p[:1]).max())
    spread = float(p.std(axis=0).max())
    print(f"{path}: onnx.checker passed; OpenCV {cv2.__version__} vs convoy predict over {len(x)} samples: "
          f"max abs diff {diff:.3g} (batch 1: {diff1:.3g}); probabilities' spread over the samples {spread:.3g}")
    if not diff <= TOL or not diff1 <= TOL:
        problems.append(f"OpenCV's probabilities differ from convoy's by {max(diff, diff1):.3g} > {TOL}")
    if spread < 1e-4:
        problems.append(f"the probabilities hardly vary over the samples (spread {spread:.3g}): nothing compared")
    for m in problems:
        print(f"FAIL: {path}: {m}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
