"""Every bad input is a convoy.ConvoyError carrying convoy's one-line message (the file or
array and the place), never a crash of the interpreter; the model stays usable after it."""

import numpy as np
import pytest

import convoy
from conftest import MODEL


@pytest.fixture
def m():
    return convoy.Model.from_text(MODEL)


def fails(fn, *want):
    with pytest.raises(convoy.ConvoyError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    for w in want:
        assert w in msg, msg
    return msg


def test_bad_model_text_names_the_line():
    fails(lambda: convoy.Model.from_text("input shape=8,8,1\ndense unitz=3\n"), "<model>:2:", "unitz")
    fails(lambda: convoy.Model.from_text(b"input shape=4\n"), "must be a str")


def test_missing_files(tmp_path):
    fails(lambda: convoy.Model.from_file(str(tmp_path / "no.model")), "no.model: cannot read the model file")
    fails(lambda: convoy.load(str(tmp_path / "no.h5")), "no.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    fails(lambda: convoy.load(str(tmp_path / "junk.h5")), "junk.h5")


def test_model_file_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.model"
    p.write_text("input shape=8,8,1\nconv2d filters=0 kernel=3\n")
    fails(lambda: convoy.Model.from_file(str(p)), "bad.model:2:")


def test_bad_shapes(m, data):
    x, y = data
    fails(lambda: m.fit(x[:, :5, :5], y, verbose=0), "(x, y):/x: samples are (5, 5, 1) but the model's input is (8, 8, 1) (<model>:1)")
    fails(lambda: m.fit(x.reshape(300, 64)[:, :, None, None, None], y, verbose=0), "x has shape (300, 64, 1, 1, 1); convoy takes (N, H, W, C) images or (N, D) rows, N >= 1 (the model's input is (8, 8, 1))")
    fails(lambda: m.fit(x, y[:10], verbose=0), "y has shape (10,) but x has 300 rows")
    fails(lambda: m.fit(x[:0], y[:0], verbose=0), "N >= 1")
    fails(lambda: m.predict(x[:, :7]), "predict:/x: samples are (7, 8, 1)")
    fails(lambda: m.fit(x, y, validation_data=(x[:5, :4], y[:5]), verbose=0), "validation_data:/x")


def test_wrong_dtypes(m, data):
    x, y = data
    fails(lambda: m.fit(x.astype(np.float64), y, verbose=0), "x has dtype float64", "astype(np.float32)")
    fails(lambda: m.fit(x, y.astype(str), verbose=0), "y has dtype <U")
    fails(lambda: m.fit(x, y.astype(np.float32) + 0.5, verbose=0),
          "sparse_categorical_crossentropy needs integer labels")
    bad = (x / 255.0).astype(np.float32)
    bad[7, 1, 1, 0] = np.nan
    fails(lambda: m.predict(bad), "predict:/x: NaN at row 7")


def test_labels_out_of_range(m, data):
    x, y = data
    y = y.copy()
    y[4] = 3
    fails(lambda: m.fit(x, y, verbose=0), "(x, y):/y: label 3 at row 4 outside [0, 3)")
    y[4] = -1
    fails(lambda: m.evaluate(x, y), "evaluate:/y: negative label -1 at row 4")
    y[4] = 2 ** 40
    fails(lambda: m.fit(x, y, verbose=0), "labels outside int32")


def test_bad_fit_arguments(m, data):
    x, y = data
    fails(lambda: m.fit(x, y, epochs=0), "epochs=0")
    fails(lambda: m.fit(x, y, batch_size=-3), "batch_size=-3")
    fails(lambda: m.fit(x, y, validation_split=1.5), "validation_split=1.5")
    fails(lambda: m.fit(x, y, validation_split=0.1, validation_data=(x, y)), "either validation_data")
    fails(lambda: m.fit(x, y, validation_data=x), "a pair")
    fails(lambda: m.fit(x, y, callbacks=[3]), "neither callable")
    fails(lambda: m.fit(x, y, seed=-1), "seed=-1")


def test_bad_weights(m, data, tmp_path):
    w = m.get_weights()
    fails(lambda: m.set_weights(w[:-1]), "5 arrays given, the model has 6")
    fails(lambda: m.set_weights([w[0].T] + w[1:]), "array 0 has shape (4, 1, 3, 3), the model's is (3, 3, 1, 4)")
    w[2] = w[2].copy()
    w[2][0, 0] = np.inf
    fails(lambda: m.set_weights(w), "array 2 holds NaN or infinity")
    # never trained: how the input is normalised is not known yet, so there is nothing to save
    fails(lambda: m.save(str(tmp_path / "c.h5")), "c.h5: the model was never trained")
    assert not (tmp_path / "c.h5").exists()


def test_model_usable_after_errors(m, data):
    x, y = data
    fails(lambda: m.fit(x.astype(np.float64), y, verbose=0), "float64")
    h = m.fit(x, y, epochs=1, verbose=0)
    assert len(h.epoch) == 1 and m.predict(x[:1]).shape == (1, 3)
    # a trained model's messages still name the model text's lines, not its private checkpoint
    msg = fails(lambda: m.predict(x[:, :6]), "predict:/x: samples are (6, 8, 1)", "(<model>:1)")
    assert "state-" not in msg
    fails(lambda: m.save(str(x.shape) + "/no/such/dir/c.h5"), "c.h5")
