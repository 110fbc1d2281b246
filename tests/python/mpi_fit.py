"""Run by test_cli_equal.py under `mpirun -np 2`: each rank reads the whole data (h5py) and fits
its shard as `convoy train` does; every rank then holds the trained model (evaluate and predict
run on each), and rank 0 saves it; with a fourth argument, fit reads DATA.h5 itself (the path, as
`convoy train --data`) and saves to that. Usage: mpi_fit.py MODEL DATA.h5 OUT.h5 [OUT_FILE.h5]"""

import sys

import h5py
import numpy as np

import convoy

model, data, out = sys.argv[1:4]
with h5py.File(data, "r") as f:
    x, y = f["x"][...], f["y"][...]
m = convoy.Model.from_file(model)
m.fit(x, y, epochs=2, verbose=0)
loss, acc = m.evaluate(x, y)
p = m.predict(x)
assert p.shape == (len(x), 3) and np.isfinite(loss)
m.save(out)
print("rank %d of %d: loss %.6f accuracy %.6f" % (convoy.rank, convoy.size, loss, acc), flush=True)
if len(sys.argv) > 4:
    f = convoy.Model.from_file(model)
    f.fit(data, epochs=2, verbose=0)
    assert f.evaluate(data) == f.evaluate(x, y)
    f.save(sys.argv[4])
