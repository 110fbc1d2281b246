"""fit, evaluate and predict on HDF5 dataset files (the CLI's --data path, byte for byte), convoy's
callbacks as keyword arguments and Keras-style objects (the same run as the keys written on the
model file's fit line), and threads= (the CLI's --threads: the same bits at any count)."""

import os
import subprocess

import numpy as np
import pytest

import convoy
from conftest import CONVOY, MODEL, run, write_h5


def same(a, b):
    return len(a) == len(b) and all(p.tobytes() == q.tobytes() for p, q in zip(a, b))


@pytest.fixture
def files(data, tmp_path):
    x, y = data
    write_h5(str(tmp_path / "d.h5"), x, y)
    write_h5(str(tmp_path / "v.h5"), x[:60], y[:60])
    return str(tmp_path / "d.h5"), str(tmp_path / "v.h5")


def test_fit_on_a_file_equals_convoy_train_data(files, model_file, tmp_path, data):
    d, v = files
    run([CONVOY, "train", model_file, "--data", d, "--val", v, "--epochs", "2", "--checkpoint",
         str(tmp_path / "cli.h5"), "--quiet"])
    m = convoy.Model.from_file(model_file)
    h = m.fit(d, epochs=2, validation_data=v, verbose=0)
    assert same(m.get_weights(), convoy.load(str(tmp_path / "cli.h5")).get_weights())
    assert len(h.history["val_loss"]) == 2
    # the same file as arrays: the same run
    x, y = data
    a = convoy.Model.from_file(model_file)
    a.fit(x, y, epochs=2, validation_data=(x[:60], y[:60]), verbose=0)
    assert same(a.get_weights(), m.get_weights())
    # evaluate and predict on the file: the arrays' answers
    assert m.evaluate(d) == m.evaluate(x, y)
    assert np.array_equal(m.predict(d), m.predict(x))
    # validation_split applies to a file as to `convoy train --data --validation-split`
    s = convoy.Model.from_file(model_file)
    s.fit(d, epochs=1, validation_split=0.25, verbose=0)
    run([CONVOY, "train", model_file, "--data", d, "--epochs", "1", "--validation-split", "0.25",
         "--checkpoint", str(tmp_path / "split.h5"), "--quiet"])
    assert same(s.get_weights(), convoy.load(str(tmp_path / "split.h5")).get_weights())


def test_dataset_file_errors(files, model_file, tmp_path, data):
    d, _ = files
    m = convoy.Model.from_file(model_file)
    missing = str(tmp_path / "nothere.h5")
    with pytest.raises(convoy.ConvoyError, match="nothere.h5"):
        m.fit(missing, epochs=1, verbose=0)
    with pytest.raises(convoy.ConvoyError, match="nothere.h5"):
        m.evaluate(missing)
    with pytest.raises(convoy.ConvoyError, match="nothere.h5"):
        m.predict(missing)
    with pytest.raises(convoy.ConvoyError, match="y=None"):
        m.fit(d, data[1], epochs=1, verbose=0)
    wrong = str(tmp_path / "wrong.h5")
    write_h5(wrong, np.zeros((10, 5, 5, 1), np.uint8), np.zeros(10, np.int64))
    with pytest.raises(convoy.ConvoyError, match="wrong.h5"):
        m.fit(wrong, epochs=1, verbose=0)
    with pytest.raises(convoy.ConvoyError, match="wrong.h5"):
        m.predict(wrong)


def with_keys(extra):
    return MODEL.replace("fit epochs=4 batch_size=32 seed=11 validation_split=0.2",
                         "fit epochs=4 batch_size=32 seed=11 validation_split=0.2 " + extra)


# (the last: save_best_only keeps the best epoch's weights, here the last epoch's, so only its
# equality with the fit-line form is checked)
@pytest.mark.parametrize("kwargs,line,changes", [
    (dict(early_stopping_patience=1, min_delta=0.5), "early_stopping_patience=1 min_delta=0.5", True),
    (dict(lr_schedule="step", drop_every=1, decay_rate=0.5), "lr_schedule=step drop_every=1 decay_rate=0.5", True),
    (dict(reduce_lr_patience=1, reduce_lr_factor=0.5, reduce_lr_min_delta=10.0, monitor="loss"),
     "reduce_lr_patience=1 reduce_lr_factor=0.5 reduce_lr_min_delta=10.0 monitor=loss", True),
    (dict(lr_schedule="cosine", warmup_steps=5), "lr_schedule=cosine warmup_steps=5", True),
    (dict(save_best_only=True, monitor="val_accuracy"), "save_best_only=true monitor=val_accuracy", False),
])
def test_callback_keywords_are_the_fit_line(kwargs, line, changes, data):
    x, y = data
    kw = convoy.Model.from_text(MODEL)
    hk = kw.fit(x, y, verbose=0, **kwargs)
    mf = convoy.Model.from_text(with_keys(line))
    hm = mf.fit(x, y, verbose=0)
    assert hk.history == hm.history
    assert same(kw.get_weights(), mf.get_weights())
    plain = convoy.Model.from_text(MODEL)
    hp = plain.fit(x, y, verbose=0)
    assert (hp.history != hk.history) == changes  # the keys change the run


def test_early_stopping_stops_and_keras_objects_match(data):
    x, y = data
    a = convoy.Model.from_text(MODEL)
    ha = a.fit(x, y, epochs=8, verbose=0, early_stopping_patience=1, min_delta=10.0)
    assert len(ha.history["loss"]) == 2  # no epoch improves val_loss by 10
    b = convoy.Model.from_text(MODEL)
    hb = b.fit(x, y, epochs=8, verbose=0, callbacks=[convoy.EarlyStopping(patience=1, min_delta=10.0)])
    assert ha.history == hb.history and same(a.get_weights(), b.get_weights())
    c = convoy.Model.from_text(MODEL)
    hc = c.fit(x, y, verbose=0, callbacks=[convoy.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1)])
    d = convoy.Model.from_text(MODEL)
    hd = d.fit(x, y, verbose=0, monitor="loss", reduce_lr_factor=0.5, reduce_lr_patience=1)
    assert hc.history == hd.history


def test_callback_keywords_on_a_loaded_model(data, tmp_path):
    x, y = data
    m = convoy.Model.from_text(MODEL)
    m.fit(x, y, epochs=1, verbose=0)
    m.save(str(tmp_path / "c.h5"))
    a, b = convoy.load(str(tmp_path / "c.h5")), convoy.load(str(tmp_path / "c.h5"))
    ha = a.fit(x, y, epochs=3, verbose=0, lr_schedule="step", drop_every=1, decay_rate=0.1)
    hb = b.fit(x, y, epochs=3, verbose=0)
    assert ha.history != hb.history


def test_callback_keyword_errors(data):
    x, y = data
    m = convoy.Model.from_text(MODEL)
    with pytest.raises(convoy.ConvoyError, match="unknown argument 'early_stoping_patience'.*did you mean "
                                                 "early_stopping_patience"):
        m.fit(x, y, epochs=1, verbose=0, early_stoping_patience=2)
    with pytest.raises(convoy.ConvoyError, match="must be a whole number"):
        m.fit(x, y, epochs=1, verbose=0, early_stopping_patience=1.5)
    with pytest.raises(convoy.ConvoyError, match="must be True or False"):
        m.fit(x, y, epochs=1, verbose=0, save_best_only="yes")
    with pytest.raises(convoy.ConvoyError, match="lr_schedule"):  # the parser's message on the fit line
        m.fit(x, y, epochs=1, verbose=0, lr_schedule="sawtooth")
    with pytest.raises(convoy.ConvoyError, match="monitor"):
        m.fit(x, y, epochs=1, verbose=0, monitor="val_f1", early_stopping_patience=1)
    with pytest.raises(convoy.ConvoyError, match="given twice"):
        m.fit(x, y, epochs=1, verbose=0, early_stopping_patience=2, callbacks=[convoy.EarlyStopping(patience=3)])


def test_threads_change_the_speed_not_the_bits(data):
    x, y = data
    a, b = convoy.Model.from_text(MODEL), convoy.Model.from_text(MODEL)
    a.fit(x, y, epochs=2, verbose=0, threads=1)
    b.fit(x, y, epochs=2, verbose=0, threads=2)
    assert same(a.get_weights(), b.get_weights())
    assert np.array_equal(a.predict(x, threads=1), a.predict(x, threads=2))
    assert a.evaluate(x, y, threads=2) == a.evaluate(x, y, threads=1)
    for bad in (0, -1, 1.5, "2", 2000):
        with pytest.raises(convoy.ConvoyError, match="threads="):
            a.predict(x, threads=bad)
    with pytest.raises(convoy.ConvoyError, match="threads="):
        a.fit(x, y, epochs=1, verbose=0, threads=0)


def test_precision_keyword_is_the_cli_flag(files, model_file, tmp_path):
    # where the CPU has no AVX512_BF16, the same arithmetic emulated (for this process and the CLI)
    probe = subprocess.run([CONVOY, "--version"], capture_output=True, text=True)
    if "--precision bf16 on AVX512_BF16" not in probe.stdout:
        os.environ["CONVOY_BF16"] = "emulate"
    d, _ = files
    run([CONVOY, "train", model_file, "--data", d, "--epochs", "2", "--precision", "bf16", "--checkpoint",
         str(tmp_path / "bf16.h5"), "--quiet"])
    m = convoy.Model.from_file(model_file)
    m.fit(d, epochs=2, precision="bf16", verbose=0)
    assert same(m.get_weights(), convoy.load(str(tmp_path / "bf16.h5")).get_weights())
    f = convoy.Model.from_file(model_file)
    f.fit(d, epochs=2, verbose=0)
    assert not same(f.get_weights(), m.get_weights()), "bf16 trained fp32's weights"
    with pytest.raises(convoy.ConvoyError, match="unknown precision 'fp16'"):
        f.fit(d, epochs=1, precision="fp16", verbose=0)


def test_precision_is_a_training_setting(data):
    # a model text whose fit line asks for bf16: predict and evaluate still run fp32, as
    # `convoy eval` and `convoy predict` do without --precision
    x, y = data
    a = convoy.Model.from_text(MODEL)
    b = convoy.Model.from_text(MODEL.replace("validation_split=0.2", "validation_split=0.2 precision=bf16"))
    assert np.array_equal(a.predict(x), b.predict(x))
    assert a.evaluate(x, y) == b.evaluate(x, y)
