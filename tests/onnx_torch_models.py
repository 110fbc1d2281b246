# PyTorch models exported to ONNX for tests/e2e_onnx_import.sh, with a float dataset and torch's
# own outputs: usage onnx_torch_models.py OUT_DIR. Writes cnn.onnx (conv, batchnorm, relu,
# maxpool with ceil_mode, conv, relu, flatten, linear, softmax), res.onnx (ResNet's padded
# max-pool stem, a residual block with an identity shortcut, one with a 1x1 strided projection,
# global average pool, linear), misc.onnx (an NHWC input and its Transpose, a replicate-padded
# conv as Pad(edge) + Conv, leaky relu, a padded average pool counting the padding, tanh, a
# Reshape, MatMul + Add, sigmoid), tiny.onnx (a residual block whose branch is one 1x1 conv, a
# ReduceMean over H and W), nhwc.onnx (a channels-last input divided by 255, transposed in and
# back before the flatten), mlp.onnx (dense layers and a residual block of them), d.h5 (/x NHWC,
# /y labels), dx.h5 (/x only), dv.h5 (mlp's vectors) and want_NAME.npy, each model's outputs in
# torch.
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn

out = sys.argv[1]
torch.manual_seed(0)


def randomise_bn(m):
    # untrained statistics are 0 and 1: give every batchnorm something to do
    for b in m.modules():
        if isinstance(b, nn.BatchNorm2d):
            with torch.no_grad():
                b.running_mean.uniform_(-0.5, 0.5)
                b.running_var.uniform_(0.5, 2.0)
                b.weight.uniform_(0.5, 1.5)
                b.bias.uniform_(-0.2, 0.2)


cnn = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
                    nn.Conv2d(6, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 5 * 5, 5), nn.Softmax(dim=1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        return torch.relu(y + (x if self.short is None else self.short(x)))


res = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, padding=1), Block(4, 4, 1), Block(4, 8, 2),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
class Misc(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, padding_mode="replicate")
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)
        self.w = nn.Parameter(torch.randn(4 * 7 * 7, 3) * 0.1)
        self.b = nn.Parameter(torch.randn(3))

    def forward(self, x):  # x is (N, H, W, C)
        y = torch.tanh(self.pool(nn.functional.leaky_relu(self.conv(x.permute(0, 3, 1, 2)), 0.1)))
        return torch.sigmoid(torch.matmul(y.reshape(-1, 4 * 7 * 7), self.w) + self.b)


class Tiny(nn.Module):  # a block whose branch is one 1x1 conv beside its identity shortcut; a mean as the pool
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.fc = nn.Linear(2, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x) + x).mean(dim=(2, 3)))


class Nhwc(nn.Module):  # a channels-last model: x / 255 and a Transpose in, a Transpose back before the flatten
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.fc = nn.Linear(3 * 11 * 11, 5)

    def forward(self, x):  # x is (N, H, W, C)
        y = torch.relu(self.conv((x / 255).permute(0, 3, 1, 2)))
        return torch.softmax(self.fc(y.permute(0, 2, 3, 1).flatten(1)), dim=1)


x = torch.randn(40, 2, 13, 13)
for name, m in (("cnn", cnn), ("res", res), ("misc", Misc()), ("tiny", Tiny()), ("nhwc", Nhwc())):
    randomise_bn(m)
    m.eval()
    xin = x.permute(0, 2, 3, 1).contiguous() if name in ("misc", "nhwc") else x
    # PRESERVE (the model is in eval mode) without constant folding keeps each BatchNormalization a node
    # of its own (EVAL folds it into the Conv); misc has none and is exported as torch does by default
    how = {} if name in ("misc", "tiny", "nhwc") else {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False}
    torch.onnx.export(m, xin[:1], f"{out}/{name}.onnx", opset_version=13, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, **how)
    with torch.no_grad():
        np.save(f"{out}/want_{name}.npy", m(xin).numpy())
class Mlp(nn.Module):  # vectors: Gemm layers and a residual block of dense layers
    def __init__(self):
        super().__init__()
        self.a, self.b, self.o = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 3)

    def forward(self, v):
        y = torch.relu(self.a(v))
        return self.o(torch.relu(self.b(y) + y))


v = torch.randn(40, 6)
mlp = Mlp().eval()
torch.onnx.export(mlp, v[:1], f"{out}/mlp.onnx", opset_version=13, input_names=["x"], output_names=["y"],
                  dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
with torch.no_grad():
    np.save(f"{out}/want_mlp.npy", mlp(v).numpy())
with h5py.File(f"{out}/dv.h5", "w") as f:
    f["x"] = v.numpy()
with h5py.File(f"{out}/d.h5", "w") as f:
    f["x"] = x.permute(0, 2, 3, 1).contiguous().numpy()
    f["y"] = (np.arange(40) % 5).astype(np.int32)
with h5py.File(f"{out}/dx.h5", "w") as f:  # inputs only: misc's 3 sigmoid outputs are no classes
    f["x"] = x.permute(0, 2, 3, 1).contiguous().numpy()
