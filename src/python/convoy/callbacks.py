"""convoy's own callbacks from Python: the model file's fit-line keys (docs/model-file.md, "fit") as
keyword arguments of Model.fit, and Keras-style objects for callbacks=[...] that stand for the same
keys. Either way the model text's fit line gets the keys, so a run is the one the model file with
those keys written in would give, and the parser checks every value with its own messages."""

import difflib

from ._lib import ConvoyError

# the fit line's callback keys (and precision, fp32 or bf16) and the Python types each takes
FIT_KEYS = {
    "lr_schedule": str, "decay_rate": float, "decay_steps": int, "drop_every": int, "cosine_alpha": float,
    "warmup_steps": int, "monitor": str, "early_stopping_patience": int, "min_delta": float,
    "restore_best_weights": bool, "reduce_lr_patience": int, "reduce_lr_factor": float,
    "reduce_lr_min_delta": float, "reduce_lr_cooldown": int, "min_lr": float, "save_best_only": bool,
    "precision": str,
}


def _text(key, v):
    want = FIT_KEYS[key]
    if want is bool:
        if not isinstance(v, bool):
            raise ConvoyError("fit: %s=%r must be True or False" % (key, v))
        return "true" if v else "false"
    if want is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConvoyError("fit: %s=%r must be a whole number" % (key, v))
        return str(v)
    if want is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConvoyError("fit: %s=%r must be a number" % (key, v))
        return repr(float(v))
    if not isinstance(v, str) or not v or any(c.isspace() or c in "#=" for c in v):
        raise ConvoyError("fit: %s=%r must be a word (no spaces, '#' or '=')" % (key, v))
    return v


def check_keys(keys):
    """Refuses a keyword that is no fit-line callback key, naming the nearest one."""
    for k in keys:
        if k not in FIT_KEYS:
            near = difflib.get_close_matches(k, list(FIT_KEYS), n=1)
            raise ConvoyError("fit: unknown argument '%s'%s (convoy's callbacks: %s)"
                              % (k, " (did you mean %s?)" % near[0] if near else "", ", ".join(FIT_KEYS)))


def with_fit_keys(text, keys):
    """text with keys (name -> value) on its fit line, replacing the same keys there (a fit line
    is added when it has none)."""
    if not keys:
        return text
    check_keys(keys)
    words = ["%s=%s" % (k, _text(k, v)) for k, v in keys.items()]
    lines = text.split("\n")
    for i, line in enumerate(lines):
        body, hash_, comment = line.partition("#")
        tokens = body.split()
        if tokens and tokens[0] == "fit":
            kept = [t for t in tokens[1:] if t.partition("=")[0] not in keys]
            lines[i] = " ".join(["fit"] + kept + words) + ("  #" + comment if hash_ else "")
            return "\n".join(lines)
    return text.rstrip("\n") + "\nfit " + " ".join(words) + "\n"


class _Keys:
    """A callback that stands for fit-line keys (fit_keys)."""

    def __init__(self, **keys):
        self.fit_keys = {k: v for k, v in keys.items() if v is not None}

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in self.fit_keys.items()))


class EarlyStopping(_Keys):
    """Keras's EarlyStopping: stop after `patience` epochs without an improvement of the monitored
    value larger than min_delta; restore_best_weights ends with the best epoch's weights."""

    def __init__(self, monitor=None, patience=1, min_delta=None, restore_best_weights=None):
        super().__init__(monitor=monitor, early_stopping_patience=patience, min_delta=min_delta,
                         restore_best_weights=restore_best_weights)


class ReduceLROnPlateau(_Keys):
    """Keras's ReduceLROnPlateau: the learning rate times factor after `patience` flat epochs."""

    def __init__(self, monitor=None, factor=None, patience=10, min_delta=None, cooldown=None, min_lr=None):
        super().__init__(monitor=monitor, reduce_lr_factor=factor, reduce_lr_patience=patience,
                         reduce_lr_min_delta=min_delta, reduce_lr_cooldown=cooldown, min_lr=min_lr)


def merge(callbacks, keywords):
    """The fit keys of the callback objects in callbacks and of the keyword arguments (which
    must not give a key twice), and the callables left."""
    keys, rest = {}, []
    for cb in callbacks:
        if isinstance(cb, _Keys):
            for k, v in cb.fit_keys.items():
                if k in keys and keys[k] != v:
                    raise ConvoyError("fit: %s is given twice (%r and %r)" % (k, keys[k], v))
                keys[k] = v
        else:
            rest.append(cb)
    check_keys(keywords)
    for k, v in keywords.items():
        if k in keys and keys[k] != v:
            raise ConvoyError("fit: %s is given twice (%r and %r)" % (k, keys[k], v))
        keys[k] = v
    return keys, rest
