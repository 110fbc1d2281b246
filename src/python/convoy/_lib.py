"""libconvoy through ctypes: finding the shared library, the signatures of convoy/binding.h,
the distributed context (MPI under a launcher), and ConvoyError for convoy's one-line messages."""

import atexit
import ctypes
import ctypes.util
import glob
import os

ERR_MSG = 512  # CV_ERR_MSG
INFO_N = 9     # CV_BIND_INFO_N
(IN_RANK, IN_D0, IN_D1, IN_D2, OUTPUTS, LABELS, TENSORS, PARAMS, CLASSES) = range(INFO_N)


class ConvoyError(Exception):
    """A convoy error: its message is convoy's one line, naming the file (or array) and place."""


def _candidates():
    env = os.environ.get("CONVOY_LIB")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    # the build tree (src/python/convoy -> build/); an install (P/lib/python3/dist-packages/convoy
    # -> P/lib or P/lib/<multiarch>); then wherever the loader finds it
    prefix_lib = os.path.normpath(os.path.join(here, "..", "..", ".."))
    found = [os.path.join(here, "..", "..", "..", "build", "libconvoy.so"),
             os.path.join(prefix_lib, "libconvoy.so.0")]
    found += sorted(glob.glob(os.path.join(prefix_lib, "*-linux-gnu*", "libconvoy.so.0")))
    name = ctypes.util.find_library("convoy")
    return found + [name or "libconvoy.so.0"]


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + " (absent)")
            continue
        try:
            # RTLD_GLOBAL: Open MPI's plug-ins look up libmpi's symbols in the global namespace
            return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("convoy: cannot load libconvoy.so: tried " + "; ".join(tried) +
                      " (build it with cmake, or set CONVOY_LIB=/path/to/libconvoy.so)")


lib = _load()

c_int64_p = ctypes.POINTER(ctypes.c_int64)
c_float_p = ctypes.POINTER(ctypes.c_float)
c_double_p = ctypes.POINTER(ctypes.c_double)
EPOCH_END = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                             ctypes.POINTER(ctypes.c_char_p), c_double_p)


class FitOpts(ctypes.Structure):
    """cv_bind_fit_opts."""
    _fields_ = [("epochs", ctypes.c_int64), ("batch_size", ctypes.c_int64), ("seed", ctypes.c_int64),
                ("validation_split", ctypes.c_double), ("verbose", ctypes.c_int),
                ("init_from", ctypes.c_char_p), ("init_weights", c_float_p),
                ("n_init_weights", ctypes.c_int64), ("on_epoch_end", EPOCH_END),
                ("epoch_ctx", ctypes.c_void_p), ("data", ctypes.c_char_p), ("val", ctypes.c_char_p)]


_s, _i, _v, _f = ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, c_float_p
_SIGNATURES = {
    "cv_bind_init": (_i, [ctypes.c_int, ctypes.POINTER(_i), ctypes.POINTER(_i), _s]),
    "cv_bind_finalize": (None, []),
    "cv_bind_describe": (_i, [_s, _s, _s, c_int64_p, ctypes.POINTER(_v), _s]),
    "cv_bind_free": (None, [_v]),
    "cv_bind_weight_shapes": (_i, [_s, _s, _s, c_int64_p, _i, _s]),
    "cv_bind_get_weights": (_i, [_s, _s, _s, _f, ctypes.c_int64, _s]),
    "cv_bind_dataset": (_v, [_s, ctypes.c_int64, _i, c_int64_p, _i, _v, _v, _v, _i, _s]),
    "cv_bind_dataset_free": (None, [_v]),
    "cv_bind_dataset_file": (_v, [_s, _i, _s]),
    "cv_bind_dataset_rows": (ctypes.c_int64, [_v]),
    "cv_bind_threads": (_i, [_i]),
    "cv_bind_model_text": (_i, [_s, ctypes.POINTER(_v), _s]),
    "cv_bind_fit": (_i, [_s, _s, ctypes.POINTER(FitOpts), _v, _v, _s, ctypes.POINTER(_i), _s]),
    "cv_bind_evaluate": (_i, [_s, _s, _s, _f, ctypes.c_int64, _v, _s, _i, c_double_p, _s]),
    "cv_bind_predict": (_i, [_s, _s, _s, _f, ctypes.c_int64, _v, _f, _s]),
    "cv_bind_save": (_i, [_s, _s, _s, _f, ctypes.c_int64, _s, _s]),
}
for _name, (_res, _args) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype, _fn.argtypes = _res, _args


def enc(s):
    """A str (or None) as the C string ctypes passes."""
    return None if s is None else os.fsencode(s)


def call(fn, *args):
    """Calls fn(*args, err) and raises ConvoyError with its message when it fails (-1 or NULL)."""
    err = ctypes.create_string_buffer(ERR_MSG)
    rc = fn(*args, err)
    if rc is None or (isinstance(rc, int) and rc < 0):
        raise ConvoyError(err.value.decode("utf-8", "replace") or "failed")
    return rc


def _started_by_mpi_launcher():
    # the same variables `convoy` looks at (src/cli/main.c): mpirun, srun, MPICH, CONVOY_MPI=1
    if os.environ.get("CONVOY_MPI") == "1":
        return True
    return any(v in os.environ for v in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_FD",
                                         "SLURM_PROCID"))


_rank, _size = ctypes.c_int(0), ctypes.c_int(1)
call(lib.cv_bind_init, int(_started_by_mpi_launcher()), ctypes.byref(_rank), ctypes.byref(_size))
rank, size = _rank.value, _size.value
atexit.register(lib.cv_bind_finalize)
