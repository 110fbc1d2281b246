"""Shared by the Python tests: a small image task (3 classes of 8x8 grey images told apart by
where a bright column stands, noise around it), its model, and the convoy program to compare
with (CONVOY_BIN, set by ctest; else build/convoy)."""

import os
import subprocess

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONVOY = os.environ.get("CONVOY_BIN", os.path.join(ROOT, "build", "convoy"))

MODEL = """input shape=8,8,1
conv2d filters=4 kernel=3 activation=relu
maxpool2d pool=2
flatten
dense units=16 activation=relu
dropout rate=0.2
dense units=3 activation=softmax
compile optimizer=adam learning_rate=0.01 loss=sparse_categorical_crossentropy metrics=accuracy
fit epochs=4 batch_size=32 seed=11 validation_split=0.2
"""


def images(n, seed):
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3).astype(np.int64)
    x = rng.integers(0, 60, size=(n, 8, 8, 1)).astype(np.uint8)
    for i in range(n):
        x[i, :, 1 + 3 * y[i], 0] += 180
    return x, y


@pytest.fixture
def data():
    return images(300, 1)


@pytest.fixture
def model_file(tmp_path):
    p = tmp_path / "small.model"
    p.write_text(MODEL)
    return str(p)


def write_h5(path, x, y):
    h5py = pytest.importorskip("h5py", reason="h5py (python3-h5py) writes the CLI's data")
    with h5py.File(path, "w") as f:
        f["x"] = x
        f["y"] = y


def mpi_env():
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
    return env


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, "%s failed (%d):\n%s%s" % (cmd, r.returncode, r.stdout, r.stderr)
    return r
