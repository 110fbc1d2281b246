"""Python and `convoy train` on the same data, model and seed give byte-identical weights, in
one process and at 2 ranks under mpirun."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import convoy
from conftest import CONVOY, MODEL, mpi_env, run, write_h5

HERE = os.path.dirname(os.path.abspath(__file__))


def same(a, b):
    return len(a) == len(b) and all(p.dtype == q.dtype and p.tobytes() == q.tobytes() for p, q in zip(a, b))


def test_weights_equal_the_cli_byte_for_byte(data, model_file, tmp_path):
    x, y = data
    write_h5(str(tmp_path / "d.h5"), x, y)
    run([CONVOY, "train", model_file, "--data", str(tmp_path / "d.h5"), "--epochs", "3", "--seed", "5",
         "--batch-size", "24", "--checkpoint", str(tmp_path / "cli.h5"), "--quiet"],
        env=dict(os.environ, OMP_NUM_THREADS="1"))
    m = convoy.Model.from_file(model_file)
    h = m.fit(x, y, epochs=3, seed=5, batch_size=24, verbose=0)
    cli = convoy.load(str(tmp_path / "cli.h5"))
    assert same(m.get_weights(), cli.get_weights())
    assert np.array_equal(m.predict(x), cli.predict(x))
    # the history is the CLI's --log, and evaluate is `convoy eval`
    assert len(h.history["val_loss"]) == 3
    ev = run([CONVOY, "eval", str(tmp_path / "cli.h5"), "--data", str(tmp_path / "d.h5")]).stdout
    loss, acc = m.evaluate(x, y)
    assert "%.4f" % loss in ev and "%.4f" % acc in ev, ev
    # a model saved from Python is a checkpoint the CLI continues
    m.save(str(tmp_path / "py.h5"))
    run([CONVOY, "train", model_file, "--data", str(tmp_path / "d.h5"), "--epochs", "4", "--seed", "5",
         "--batch-size", "24", "--resume", str(tmp_path / "py.h5"), "--checkpoint", str(tmp_path / "py4.h5"),
         "--quiet"])
    run([CONVOY, "train", model_file, "--data", str(tmp_path / "d.h5"), "--epochs", "4", "--seed", "5",
         "--batch-size", "24", "--resume", str(tmp_path / "cli.h5"), "--checkpoint", str(tmp_path / "cli4.h5"),
         "--quiet"])
    assert same(convoy.load(str(tmp_path / "py4.h5")).get_weights(), convoy.load(str(tmp_path / "cli4.h5")).get_weights())


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="no mpirun")
def test_two_ranks_equal_the_cli_at_two_ranks(data, model_file, tmp_path):
    x, y = data
    write_h5(str(tmp_path / "d.h5"), x, y)
    mpirun = ["mpirun", "--oversubscribe", "--bind-to", "none", "-x", "OMP_NUM_THREADS=1", "-np", "2"]
    env = mpi_env()
    run(mpirun + [CONVOY, "train", model_file, "--data", str(tmp_path / "d.h5"), "--epochs", "2",
                  "--checkpoint", str(tmp_path / "cli2.h5"), "--quiet"], env=env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(HERE, "..", "..", "src", "python"),
                                                       env.get("PYTHONPATH")]))
    out = run(mpirun + [sys.executable, os.path.join(HERE, "mpi_fit.py"), model_file, str(tmp_path / "d.h5"),
                        str(tmp_path / "py2.h5"), str(tmp_path / "file2.h5")], env=env).stdout
    assert "rank 0 of 2" in out and "rank 1 of 2" in out, out
    py2, cli2 = convoy.load(str(tmp_path / "py2.h5")), convoy.load(str(tmp_path / "cli2.h5"))
    assert same(py2.get_weights(), cli2.get_weights())
    assert same(convoy.load(str(tmp_path / "file2.h5")).get_weights(), cli2.get_weights())  # fit on the file
    # and 2 ranks are not 1 rank's bits (without --reproducible): the test can tell them apart
    one = convoy.Model.from_file(model_file)
    one.fit(x, y, epochs=2, verbose=0)
    assert not same(one.get_weights(), cli2.get_weights())
