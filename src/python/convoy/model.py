"""convoy.Model: a model file's network trained, evaluated and used from Python, Keras-style.

The model's state is a convoy checkpoint in a private temporary folder (what `convoy train
--checkpoint` writes, by the same cv_train), plus, after set_weights, weights not yet trained;
NumPy arrays go to C as pointers (no copy when they are C-contiguous uint8/float32 and int32)."""

import ctypes
import os
import shutil
import sys
import tempfile

import numpy as np

from . import _lib, callbacks as _callbacks
from ._lib import ConvoyError, call, enc, lib


class History:
    """What fit returns, as Keras's: history (name -> one value per epoch: loss, accuracy,
    val_loss, ...), epoch (the epochs run, 0-based) and params."""

    def __init__(self, params):
        self.history, self.epoch, self.params = {}, [], params

    def _add(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        return "History(epochs=%d, keys=%s)" % (len(self.epoch), list(self.history))


class _Data:
    """A C dataset over NumPy arrays that live as long as it does (checked here, so that C only
    ever reads arrays of the sizes it is told)."""

    def __init__(self, name, x, y, info, need_y):
        x = np.asarray(x)
        if x.dtype not in (np.uint8, np.float32):
            raise ConvoyError("%s: x has dtype %s; convoy takes uint8 images or float32 (x.astype(np.float32))"
                              % (name, x.dtype))
        want = ((info[_lib.IN_D0], info[_lib.IN_D1], info[_lib.IN_D2]) if info[_lib.IN_RANK] == 3
                else (info[_lib.IN_D0],))
        if x.ndim == 3 and len(want) == 3 and want[2] == 1:
            x = x.reshape(x.shape + (1,))  # (N, H, W) grey images: a view
        if x.ndim not in (2, 4) or x.shape[0] < 1:
            raise ConvoyError("%s: x has shape %s; convoy takes (N, H, W, C) images or (N, D) rows, N >= 1 "
                              "(the model's input is (%s))" % (name, x.shape, ", ".join(map(str, want))))
        self.x = np.ascontiguousarray(x)
        n = self.x.shape[0]
        self.labels = self.targets = None
        if y is None and need_y:
            raise ConvoyError("%s: y is missing" % name)
        if y is not None:
            self._set_y(name, np.asarray(y), n, info)
        shape = (ctypes.c_int64 * 3)(*self.x.shape[1:])
        ptr = lambda a: None if a is None else a.ctypes.data_as(ctypes.c_void_p)
        ydim = 0 if self.targets is None else self.targets.shape[1]
        self.handle = call(lib.cv_bind_dataset, enc(name), n, self.x.ndim - 1, shape,
                           int(self.x.dtype == np.float32), ptr(self.x), ptr(self.labels), ptr(self.targets), ydim)

    def _set_y(self, name, y, n, info):
        if y.shape[:1] != (n,):
            raise ConvoyError("%s: y has shape %s but x has %d rows" % (name, y.shape, n))
        if y.ndim == 2 and y.shape[1] == 1 and info[_lib.LABELS] and y.dtype.kind in "iub":
            y = y.reshape(n)
        integral = y.dtype.kind in "iub" or (y.dtype.kind == "f" and info[_lib.LABELS] and y.ndim == 1 and
                                             np.all(np.isfinite(y)) and np.all(y == np.round(y)))
        if integral and y.ndim == 1:
            if y.size and (y.max() > np.iinfo(np.int32).max or y.min() < np.iinfo(np.int32).min):
                raise ConvoyError("%s: y holds labels outside int32" % name)
            self.labels = np.ascontiguousarray(y, dtype=np.int32)
        elif y.dtype.kind == "f" or y.dtype.kind in "iub":
            y = y.reshape(n, -1) if y.ndim <= 2 else None
            if y is None or y.shape[1] < 1:
                raise ConvoyError("%s: y must be (N,) labels or (N, K) targets" % name)
            self.targets = np.ascontiguousarray(y, dtype=np.float32)
        else:
            raise ConvoyError("%s: y has dtype %s; convoy takes integer labels or float targets" % (name, y.dtype))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        lib.cv_bind_dataset_free(self.handle)
        self.handle = None


class _FileData:
    """A dataset file read by the C library as the CLI reads --data (the same checks, messages
    naming the file)."""

    def __init__(self, path, with_y):
        self.handle = call(lib.cv_bind_dataset_file, enc(path), int(with_y))
        self.rows = lib.cv_bind_dataset_rows(self.handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        lib.cv_bind_dataset_free(self.handle)
        self.handle = None


def _is_path(x):
    return isinstance(x, (str, bytes, os.PathLike))


class _Threads:
    """threads=N for the length of a call (the CLI's --threads): OpenMP threads per process."""

    def __init__(self, what, n):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024):
            raise ConvoyError("%s: threads=%r must be a whole number from 1 to 1024" % (what, n))
        self.n, self.before = n, None

    def __enter__(self):
        if self.n is not None:
            self.before = lib.cv_bind_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.before is not None:
            lib.cv_bind_threads(self.before)


def _floats(a):
    return a.ctypes.data_as(_lib.c_float_p)


class Model:
    """A convoy model: from a model file's text (from_file, from_text) or a checkpoint (load)."""

    def __init__(self, text=None, file=None, checkpoint=None):
        self._text, self._file = text, file or "<model>"
        self._dir = tempfile.TemporaryDirectory(prefix="convoy-")
        self._ckpt, self._pending, self._saves = None, None, 0
        self.history = None
        info = (ctypes.c_int64 * _lib.INFO_N)()
        summary = ctypes.c_void_p()
        call(lib.cv_bind_describe, enc(text), enc(self._file), enc(checkpoint), info, ctypes.byref(summary))
        self._summary = ctypes.string_at(summary).decode("utf-8", "replace")
        lib.cv_bind_free(summary)
        self._info = list(info)
        self._ckpt = checkpoint  # (read, never written: fit writes its own)

    @classmethod
    def from_file(cls, path):
        """The model in a model file (errors name it: "m.model:3: ...")."""
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ConvoyError("%s: cannot read the model file (%s)" % (path, getattr(e, "strerror", None) or e))
        return cls(text, path)

    @classmethod
    def from_text(cls, text, name="<model>"):
        """The model written in text (the model-file grammar, docs/model-file.md)."""
        if not isinstance(text, str):
            raise ConvoyError("%s: the model text must be a str, not %s" % (name, type(text).__name__))
        return cls(text, name)

    # -- what the model is --------------------------------------------------------------------
    def summary(self, print_fn=None):
        """Prints convoy summary's Keras-style table (or passes each line to print_fn)."""
        for line in self._summary.rstrip("\n").split("\n"):
            (print_fn or print)(line)

    @property
    def input_shape(self):
        i = self._info
        return (None,) + ((i[_lib.IN_D0], i[_lib.IN_D1], i[_lib.IN_D2]) if i[_lib.IN_RANK] == 3 else (i[_lib.IN_D0],))

    @property
    def output_shape(self):
        return (None, self._info[_lib.OUTPUTS])

    def count_params(self):
        return self._info[_lib.PARAMS]

    def _next_state(self):
        self._saves += 1
        return os.path.join(self._dir.name, "state-%d.h5" % self._saves)

    def _args(self):
        return enc(self._text), enc(self._file), enc(self._ckpt)

    def _data(self, name, x, y, need_y=True):
        if _is_path(x):
            if y is not None:
                raise ConvoyError("%s: x is a dataset file, whose /y are the targets: give y=None" % name)
            return _FileData(os.fsdecode(x), need_y)
        return _Data(name, x, y, self._info, need_y)

    def _model_text(self):
        if self._text is not None:
            return self._text
        text = ctypes.c_void_p()
        call(lib.cv_bind_model_text, enc(self._ckpt), ctypes.byref(text))
        try:
            return ctypes.string_at(text).decode("utf-8")
        finally:
            lib.cv_bind_free(text)

    # -- training -----------------------------------------------------------------------------
    def fit(self, x, y=None, epochs=None, batch_size=None, verbose=1, callbacks=None, validation_split=None,
            validation_data=None, seed=None, threads=None, **fit_keys):
        """Trains on x, y as `convoy train` does (the model file's fit line, overridden by the
        arguments given; batch_size="all" is full-batch). x may be an HDF5 dataset file (y=None:
        its /y), read as `convoy train --data` reads it, and validation_data one too.
        callbacks: callables f(epoch, logs) or objects with on_epoch_end(epoch, logs), called
        after each epoch (one returning False stops training), and convoy.EarlyStopping /
        convoy.ReduceLROnPlateau; the fit line's callback keys (early_stopping_patience=,
        monitor=, lr_schedule=, save_best_only=, ...: docs/python.md) are keyword arguments.
        threads: OpenMP threads for this call (the CLI's --threads). Returns a History; Ctrl-C
        stops after the step in progress, keeps what was trained and raises KeyboardInterrupt.
        A second fit continues from the weights (with a fresh optimizer)."""
        if validation_data is not None and validation_split:
            raise ConvoyError("fit: use either validation_data or validation_split, not both")
        if validation_split is not None and not 0.0 <= validation_split < 1.0:
            raise ConvoyError("fit: validation_split=%r must lie in [0, 1)" % (validation_split,))
        if epochs is not None and (int(epochs) != epochs or not 1 <= epochs <= 1000000):
            raise ConvoyError("fit: epochs=%r must be a whole number from 1 to 1000000" % (epochs,))
        if batch_size == "all":
            batch_size = 0
        elif batch_size is not None and (int(batch_size) != batch_size or not 1 <= batch_size <= 1 << 30):
            raise ConvoyError("fit: batch_size=%r must be a whole number from 1 to 2^30, or \"all\"" % (batch_size,))
        if seed is not None and (int(seed) != seed or not 0 <= seed <= 0x7FFFFFFF):
            raise ConvoyError("fit: seed=%r must be a whole number from 0 to 2^31-1" % (seed,))
        if validation_data is not None and not _is_path(validation_data) and (
                not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2):
            raise ConvoyError("fit: validation_data must be a pair (x_val, y_val) or a dataset file")
        keys, callbacks = _callbacks.merge(list(callbacks or []), fit_keys)
        text = _callbacks.with_fit_keys(self._model_text(), keys) if keys else self._text
        for cb in callbacks:
            if not callable(cb) and not callable(getattr(cb, "on_epoch_end", None)):
                raise ConvoyError("fit: callback %r is neither callable nor has on_epoch_end" % (cb,))
        history = History({"epochs": epochs, "batch_size": batch_size, "verbose": verbose})
        failure = []

        def on_epoch(ctx, epoch, n, names, values):
            try:
                logs = {names[i].decode(): values[i] for i in range(n)}
                history._add(epoch, logs)
                stop = False
                for cb in callbacks:
                    f = getattr(cb, "on_epoch_end", cb)
                    stop |= f(epoch, dict(logs)) is False
                return int(stop)
            except BaseException as e:  # raised after training stops, the model kept
                failure.append(e)
                return 1

        hook = _lib.EPOCH_END(on_epoch)
        pending = self._pending
        opts = _lib.FitOpts(epochs=int(epochs or 0), batch_size=-1 if batch_size is None else int(batch_size),
                            seed=-1 if seed is None else int(seed),
                            validation_split=-1.0 if validation_split is None else float(validation_split),
                            verbose=int(verbose), init_from=enc(self._ckpt),
                            init_weights=None if pending is None else _floats(pending),
                            n_init_weights=0 if pending is None else pending.size, on_epoch_end=hook)
        out = self._next_state()
        interrupted = ctypes.c_int(0)
        train = val = None
        if _is_path(x):
            if y is not None:
                raise ConvoyError("fit: x is a dataset file, whose /y are the targets: give y=None")
            opts.data = enc(x)
        if _is_path(validation_data):
            opts.val = enc(validation_data)
        with _Threads("fit", threads):
            try:
                train = None if _is_path(x) else self._data("(x, y)", x, y)
                if validation_data is not None and not _is_path(validation_data):
                    val = self._data("validation_data", *validation_data)
                sys.stdout.flush()
                call(lib.cv_bind_fit, enc(text), enc(self._file), ctypes.byref(opts), train.handle if train else None,
                     val.handle if val else None, enc(out), ctypes.byref(interrupted))
            finally:
                for d in (train, val):
                    if d:
                        d.__exit__()
        old, self._ckpt, self._pending, self.history = self._ckpt, out, None, history
        if keys and self._text is not None:
            self._text = text  # later fits keep the keys, as the saved checkpoint does
        if old and os.path.dirname(old) == self._dir.name:
            os.remove(old)
        if failure:
            raise failure[0]
        if interrupted.value:
            raise KeyboardInterrupt("convoy: fit stopped after a step; the model keeps what it trained")
        return history

    # -- using it -----------------------------------------------------------------------------
    def evaluate(self, x, y=None, verbose=0, return_dict=False, threads=None):
        """Loss and the compiled metrics on x, y (every sample once, in any rank count), or on a
        dataset file x (y=None): a scalar when there is only the loss, else a list, or a dict
        with return_dict."""
        names = ctypes.create_string_buffer(256)
        values = (ctypes.c_double * 16)()
        with _Threads("evaluate", threads), self._data("evaluate", x, y) as d:
            k = call(lib.cv_bind_evaluate, *self._args(), self._pending_ptr(), self._pending_n(), d.handle,
                     names, 256, values)
        logs = dict(zip(names.value.decode().split(","), values[:k]))
        if verbose:
            print(" - ".join("%s: %.4f" % kv for kv in logs.items()))
        if return_dict:
            return logs
        return values[0] if k == 1 else list(values[:k])

    def predict(self, x, verbose=0, threads=None):
        """The network's outputs for every row of x (an array, or a dataset file's /x), (N,
        outputs) float32: probabilities for softmax and sigmoid outputs."""
        with _Threads("predict", threads), self._data("predict", x, None, need_y=False) as d:
            rows = d.rows if isinstance(d, _FileData) else d.x.shape[0]
            out = np.empty((rows, self._info[_lib.OUTPUTS]), dtype=np.float32)
            call(lib.cv_bind_predict, *self._args(), self._pending_ptr(), self._pending_n(), d.handle, _floats(out))
        return out

    def _pending_ptr(self):
        return None if self._pending is None else _floats(self._pending)

    def _pending_n(self):
        return 0 if self._pending is None else self._pending.size

    def save(self, path):
        """Writes a convoy checkpoint (rank 0), readable by convoy eval/predict and convoy.load;
        after fit it is the run's checkpoint, which `convoy train --resume` continues."""
        path = os.fspath(path)
        if self._pending is None and self._ckpt:
            if _lib.rank == 0 and not (os.path.exists(path) and os.path.samefile(path, self._ckpt)):
                part = path + ".part"
                try:
                    shutil.copyfile(self._ckpt, part)
                    os.replace(part, path)
                except OSError as e:
                    raise ConvoyError("%s: cannot write (%s)" % (path, e.strerror or e))
            return
        call(lib.cv_bind_save, *self._args(), self._pending_ptr(), self._pending_n(), enc(path))

    # -- weights ------------------------------------------------------------------------------
    def _shapes(self):
        n = self._info[_lib.TENSORS]
        dims = (ctypes.c_int64 * (5 * max(n, 1)))()
        call(lib.cv_bind_weight_shapes, *self._args(), dims, n)
        return [tuple(dims[5 * i + 1:5 * i + 1 + dims[5 * i]]) for i in range(n)]

    def get_weights(self):
        """Every layer's weights in Keras's order and layouts: conv kernels (KH, KW, Cin, Cout),
        dense kernels (in, out), biases, batchnorm's gamma, beta, moving mean and variance."""
        flat = self._pending
        if flat is None:
            flat = np.empty(self._info[_lib.PARAMS], dtype=np.float32)
            call(lib.cv_bind_get_weights, *self._args(), _floats(flat), flat.size)
        out, off = [], 0
        for s in self._shapes():
            size = int(np.prod(s))
            out.append(flat[off:off + size].reshape(s).copy())
            off += size
        return out

    def set_weights(self, weights):
        """Replaces the weights with arrays shaped as get_weights returns them."""
        shapes = self._shapes()
        weights = list(weights)
        if len(weights) != len(shapes):
            raise ConvoyError("set_weights: %d arrays given, the model has %d weight tensors" %
                              (len(weights), len(shapes)))
        parts = []
        for i, (w, s) in enumerate(zip(weights, shapes)):
            w = np.asarray(w)
            if w.shape != s:
                raise ConvoyError("set_weights: array %d has shape %s, the model's is %s" % (i, w.shape, s))
            if w.dtype.kind not in "fiu":
                raise ConvoyError("set_weights: array %d has dtype %s, not a number" % (i, w.dtype))
            if not np.all(np.isfinite(w)):
                raise ConvoyError("set_weights: array %d holds NaN or infinity" % i)
            parts.append(w.astype(np.float32).ravel())
        self._pending = np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0, np.float32))


def load(path):
    """The model in a convoy checkpoint (from Model.save or `convoy train --checkpoint`)."""
    return Model(checkpoint=os.fspath(path))
