"""convoy from Python: fit, evaluate and predict on NumPy arrays through libconvoy (docs/python.md).

    import convoy
    m = convoy.Model.from_file("launch/models/fmnist-mlp.model")
    h = m.fit(x, y, epochs=3, validation_split=0.1)
    p = m.predict(x_test)
    m.save("c.h5"); m2 = convoy.load("c.h5")

Under `mpirun -np P python3 script.py` each process trains its shard as `convoy train` does;
convoy.rank and convoy.size say where this process stands."""

from ._lib import ConvoyError, rank, size
from .callbacks import EarlyStopping, ReduceLROnPlateau
from .model import History, Model, load

__all__ = ["ConvoyError", "EarlyStopping", "History", "Model", "ReduceLROnPlateau", "load", "rank", "size"]
