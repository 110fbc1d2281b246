#!/usr/bin/python3
"""The PyTorch side of launch/compare-pytorch: trains (or evaluates) convoy's fmnist-cnn or
fmnist-mlp model in PyTorch on the real Fashion-MNIST data, or trains one of the 32x32x3 CIFAR
models (vgg-bn: launch/models/cifar10-vgg-bn.model; vgg: the same without its batchnorms;
resnet20: launch/models/cifar10-resnet20.model, option A shortcuts) on random data, and prints
its throughput.

Same model, batch, optimizer and data as convoy (launch/models/fmnist-{cnn,mlp}.model, the IDX
files that `convoy convert fashion-mnist` turns into data/fmnist/*.h5, scaled x/255):

  training  WARMUP untimed steps, then STEPS timed steps (forward, cross-entropy, backward,
            [DDP allreduce,] Adam) on random-order batches of the training set; the batches are
            gathered and converted to float before the clock starts (convoy bench, which this is
            compared with, times steps on random data without data loading).
            --ddp-ranks R: R processes (torch.multiprocessing) with DistributedDataParallel over
            gloo on localhost; the global batch BATCH is split as convoy splits it (each rank
            BATCH/R samples), images/s counts the global batch.
  --eval    model.eval(), torch.no_grad(), forward passes over the 10000 test images in batches
            of --eval-batch (default 256): 4 untimed batches, then --eval-repeat timed passes,
            the best counts.
PyTorch's best chance: the CNN runs channels_last (NHWC, oneDNN's preferred layout), Adam uses
its foreach implementation, OMP_WAIT_POLICY defaults to PASSIVE (OpenBLAS's threads then do not
fight libgomp's spinning ones), and OpenBLAS should be the libblas alternative.

Prints informational lines and, last, one machine-readable line:  images_per_s=FLOAT
Run it with Debian's python3 (python3-torch, python3-numpy); OMP_NUM_THREADS should equal
--threads (launch/compare-pytorch sets it).
"""
import argparse
import gzip
import os
import socket
import struct
import sys
import time

# PyTorch's dense layers call OpenBLAS (its own pthreads) between OpenMP regions; with libgomp's
# default spinning wait policy the idle OpenMP threads compete with them for the cores (2 threads:
# the MLP trains 2-3x slower). PASSIVE must be set before torch (libgomp) loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def read_idx(path):
    """Reads an IDX file (gzipped or not) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"torch_fmnist: {path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(src, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(src, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(src, f"{prefix}-labels-idx1-ubyte.gz"))
    return x, y.astype(np.int64)


def make_model(name):
    """convoy's launch/models/fmnist-{cnn,mlp}.model; the softmax of the last layer lives in the
    loss (F.cross_entropy on logits), as PyTorch does it."""
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(128, 10))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 10))


CIFAR_MODELS = ("vgg-bn", "vgg", "resnet20")


class ShortcutA(nn.Module):
    """The paper's option A: x[:, :, ::s, ::s] with the extra channels zero, half before, half after."""

    def __init__(self, stride, pad):
        super().__init__()
        self.stride, self.pad = stride, pad

    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))


class Block(nn.Module):
    """conv3x3 -> BN -> relu -> conv3x3 -> BN, plus the shortcut, then relu."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.short = ShortcutA(stride, (cout - cin) // 2) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.short(x))


def make_cifar_model(name):
    """The 32x32x3 models of launch/models/cifar10-{vgg-bn,resnet20}.model (Keras's batchnorm
    epsilon 1e-3, momentum 0.99 = PyTorch's 0.01)."""
    if name == "resnet20":
        layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16, eps=1e-3, momentum=0.01), nn.ReLU()]
        cin = 16
        for stage, cout in enumerate((16, 32, 64)):
            for b in range(3):
                layers.append(Block(cin, cout, 2 if stage > 0 and b == 0 else 1))
                cin = cout
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    layers, cin = [], 3
    for cout in (32, 64, 128):
        for _ in range(2):
            layers.append(nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
            if name == "vgg-bn":
                layers.append(nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01))
            layers.append(nn.ReLU())
            cin = cout
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


def to_input(x_u8, model_name, channels_last):
    """uint8 (N,28,28) -> float32 x/255, shaped (N,1,28,28) for the CNN, (N,784) for the MLP."""
    x = torch.from_numpy(x_u8.astype(np.float32) / np.float32(255.0))
    if model_name in CIFAR_MODELS:
        x = x.permute(0, 3, 1, 2)   # NHWC data -> NCHW logical shape
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()
    if model_name == "cnn":
        x = x.reshape(-1, 1, 28, 28)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x
    return x.reshape(-1, 784)


def blas_library():
    """The BLAS shared library this process has mapped (after a matmul has loaded it)."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if "blas" in os.path.basename(p).lower() or "openblas" in p.lower():
                    libs.add(os.path.realpath(p))
    except OSError:
        pass
    return ", ".join(sorted(libs)) or "unknown"


def train_worker(rank, args, result_queue=None):
    ranks = args.ddp_ranks
    torch.set_num_threads(args.threads)
    if ranks > 1:
        import torch.distributed as dist
        cpus = sorted(os.sched_getaffinity(0))
        if args.bind and len(cpus) >= ranks * args.threads:   # like convoy's --map-by slot:PE=T
            os.sched_setaffinity(0, cpus[rank * args.threads:(rank + 1) * args.threads])
        dist.init_process_group("gloo", rank=rank, world_size=ranks)
    torch.manual_seed(args.seed)   # same initial weights on every rank (DDP broadcasts them anyway)

    total = args.warmup + args.steps
    if args.model in CIFAR_MODELS:   # random 32x32x3 images, as convoy bench times them
        gen = np.random.default_rng(args.seed + rank)
        x_all = gen.integers(0, 256, (max(args.batch * 4, 512), 32, 32, 3), dtype=np.uint8)
        y_all = gen.integers(0, 10, len(x_all)).astype(np.int64)
    else:
        x_all, y_all = load(args.src, "train")
    rng = np.random.default_rng(args.seed)   # same permutation on every rank
    need = total * args.batch
    order = np.concatenate([rng.permutation(len(x_all)) for _ in range(-(-need // len(x_all)))])
    # rank r computes rows [lo, hi) of every global batch, the split convoy uses
    lo = rank * args.batch // ranks
    hi = (rank + 1) * args.batch // ranks
    batches = []
    for s in range(total):
        idx = order[s * args.batch + lo:s * args.batch + hi]
        batches.append((to_input(x_all[idx], args.model, args.channels_last),
                        torch.from_numpy(y_all[idx])))
    del x_all, y_all

    cifar = args.model in CIFAR_MODELS
    model = make_cifar_model(args.model) if cifar else make_model(args.model)
    if args.channels_last and (args.model == "cnn" or cifar):
        model = model.to(memory_format=torch.channels_last)
    if ranks > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP
        model = DDP(model, gradient_as_bucket_view=True)
    model.train()
    if args.model == "resnet20":   # its model file: momentum 0.9, classic form, lr 0.1
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, foreach=args.foreach)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=args.foreach)

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    losses = []
    for s in range(args.warmup):
        losses.append(step(*batches[s]).item())
    if ranks > 1:
        dist.barrier()
    t0 = time.perf_counter()
    for s in range(args.warmup, total):
        loss = step(*batches[s])
    if ranks > 1:
        dist.barrier()
    elapsed = time.perf_counter() - t0
    last = loss.item()
    if rank == 0:
        ips = args.batch * args.steps / elapsed
        first = losses[0] if losses else float("nan")
        print(f"torch_fmnist: train {args.model}, {ranks} rank(s) x {args.threads} thread(s), "
              f"batch {args.batch}, {args.warmup} warm-up + {args.steps} timed steps: "
              f"{1e3 * elapsed / args.steps:.3f} ms/step; loss {first:.3f} -> {last:.3f}")
        if result_queue is not None:
            result_queue.put(ips)
        else:
            print(f"images_per_s={ips:.1f}", flush=True)
    if ranks > 1:
        dist.destroy_process_group()


def evaluate(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_u8, y = load(args.src, "test")
    x = to_input(x_u8, args.model, args.channels_last)
    model = make_model(args.model)
    if args.channels_last and args.model == "cnn":
        model = model.to(memory_format=torch.channels_last)
    model.eval()
    b = args.eval_batch
    times = []
    with torch.no_grad():
        for i in range(0, min(len(x), 4 * b), b):   # warm-up: oneDNN primitives, allocator
            model(x[i:i + b])
        for _ in range(args.eval_repeat):
            t0 = time.perf_counter()
            correct = 0
            for i in range(0, len(x), b):
                correct += (model(x[i:i + b]).argmax(1).numpy() == y[i:i + b]).sum()
            times.append(time.perf_counter() - t0)
    elapsed = min(times)
    print(f"torch_fmnist: eval {args.model}, 1 process x {args.threads} thread(s), batch {b}: "
          f"{len(x)} images in {elapsed:.3f} s (best of {args.eval_repeat} passes: "
          f"{', '.join(f'{t:.3f}' for t in times)}; untrained weights, accuracy {correct / len(x):.3f})")
    print(f"images_per_s={len(x) / elapsed:.1f}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["cnn", "mlp", *CIFAR_MODELS], required=True)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads per process")
    p.add_argument("--steps", type=int, default=200, help="timed training steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (convoy bench: 3)")
    p.add_argument("--batch", type=int, default=64, help="global batch")
    p.add_argument("--ddp-ranks", type=int, default=1, help="DDP processes (gloo, localhost)")
    p.add_argument("--eval", action="store_true", help="time eval-mode forward over the test set")
    p.add_argument("--eval-batch", type=int, default=256)
    p.add_argument("--eval-repeat", type=int, default=3, help="timed passes over the test set; the best counts")
    p.add_argument("--src", default=os.environ.get("FMNIST_SRC", "/usr/share/datasets/fashion-mnist"),
                   help="folder of the Fashion-MNIST IDX .gz files (what convoy convert reads)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="CNN in NHWC (channels_last) memory format, faster with oneDNN (default: on)")
    p.add_argument("--foreach", action=argparse.BooleanOptionalAction, default=True,
                   help="Adam's multi-tensor (foreach) implementation (default: on, a bit faster)")
    p.add_argument("--no-bind", dest="bind", action="store_false",
                   help="DDP: do not pin rank r to cores r*T..(r+1)*T-1")
    args = p.parse_args()
    for name in ("threads", "steps", "batch", "ddp_ranks", "eval_batch", "eval_repeat"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        p.error("--warmup must be at least 0")
    if args.ddp_ranks > args.batch:
        p.error("--ddp-ranks larger than --batch leaves ranks without samples")

    env_t = os.environ.get("OMP_NUM_THREADS")
    if env_t != str(args.threads):
        print(f"torch_fmnist: note: OMP_NUM_THREADS={env_t}, --threads {args.threads}", file=sys.stderr)
    print(f"torch_fmnist: torch {torch.__version__}, mkldnn (oneDNN) available: "
          f"{torch.backends.mkldnn.is_available()}, BLAS: {blas_library()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, channels_last: {args.channels_last}, "
          f"Adam foreach: {args.foreach}")

    if args.eval and args.model in CIFAR_MODELS:
        p.error("--eval is for the Fashion-MNIST models (cnn, mlp)")
    if args.eval:
        evaluate(args)
    elif args.ddp_ranks == 1:
        train_worker(0, args)
    else:
        import torch.multiprocessing as mp
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
        ctx = mp.get_context("spawn")
        q = ctx.SimpleQueue()
        mp.spawn(train_worker, args=(args, q), nprocs=args.ddp_ranks, join=True)
        print(f"images_per_s={q.get():.1f}", flush=True)


if __name__ == "__main__":
    main()
