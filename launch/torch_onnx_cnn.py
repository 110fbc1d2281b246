"""A small Fashion-MNIST CNN trained briefly in PyTorch and exported to ONNX (launch/onnx-walkthrough,
docs/interop.md's walk-through). The model takes raw pixels (0..255, NCHW) and divides by 255 itself, so
that convoy's import turns the division into `normalize=scale`; batchnorm after the first conv (folded
into it by torch's export in eval mode); softmax output.
    python3 launch/torch_onnx_cnn.py data/fmnist/train.h5 OUT.onnx [IMAGES]"""
import sys, h5py, numpy as np, torch, torch.nn as nn
torch.manual_seed(0)
class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.f = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))
    def forward(s, x):              # x: raw pixels 0..255, NCHW
        return torch.softmax(s.f(x / 255.0), dim=1)
data, out = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 12000
with h5py.File(data) as f:
    x = torch.tensor(f["x"][:n].astype(np.float32)).permute(0, 3, 1, 2); y = torch.tensor(f["y"][:n].astype(np.int64))
net = Net(); opt = torch.optim.Adam(net.parameters(), 1e-3)
for i in range(0, len(x), 64):
    p = net(x[i:i+64]); loss = nn.functional.nll_loss(torch.log(p + 1e-12), y[i:i+64])
    opt.zero_grad(); loss.backward(); opt.step()
net.eval()
torch.onnx.export(net, x[:1], out, opset_version=13, input_names=["image"], output_names=["probabilities"],
                  dynamic_axes={"image": {0: "N"}, "probabilities": {0: "N"}})
print("torch: trained 1 epoch on %d images, last batch loss %.3f; wrote %s" % (n, loss.item(), out))
