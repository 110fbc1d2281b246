"""fit, evaluate and predict on small arrays; callbacks; weights; save and load; Ctrl-C."""

import os
import signal

import numpy as np

import convoy
from conftest import MODEL


def test_fit_learns_and_history_has_keras_keys(data):
    x, y = data
    m = convoy.Model.from_text(MODEL)
    h = m.fit(x, y, epochs=6, verbose=0)
    assert sorted(h.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert h.epoch == list(range(6))
    assert all(len(v) == 6 for v in h.history.values())
    assert h.history["loss"][-1] < h.history["loss"][0]
    loss, acc = m.evaluate(x, y)
    assert acc > 0.9, acc
    p = m.predict(x)
    assert p.shape == (300, 3) and p.dtype == np.float32
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    # evaluate's accuracy is the share of predictions whose argmax is the label
    assert abs(float(np.mean(p.argmax(axis=1) == y)) - acc) < 1e-9
    assert m.evaluate(x, y, return_dict=True) == {"loss": loss, "accuracy": acc}


def test_validation_data_and_callbacks_stop(data):
    x, y = data
    seen = []

    class Recorder:
        def on_epoch_end(self, epoch, logs):
            seen.append((epoch, sorted(logs)))

    m = convoy.Model.from_text(MODEL)
    h = m.fit(x[:240], y[:240], epochs=5, validation_data=(x[240:], y[240:]), verbose=0,
              callbacks=[Recorder(), lambda epoch, logs: epoch < 1])
    assert h.epoch == [0, 1], "the lambda's False after epoch 1 stops the run"
    assert seen == [(0, ["accuracy", "loss", "val_accuracy", "val_loss"])] * 1 + [(1, seen[0][1])]


def test_callback_exception_propagates_and_model_stays_usable(data):
    x, y = data
    m = convoy.Model.from_text(MODEL)

    def boom(epoch, logs):
        raise ValueError("from the callback")

    try:
        m.fit(x, y, verbose=0, callbacks=[boom])
        raise AssertionError("fit returned")
    except ValueError as e:
        assert str(e) == "from the callback"
    assert len(m.history.epoch) == 1
    assert m.predict(x[:2]).shape == (2, 3)


def test_ctrl_c_stops_after_the_step_and_keeps_the_model(data):
    x, y = data
    m = convoy.Model.from_text(MODEL)
    # SIGINT at the first epoch's end: fit's handler sets the stop flag, the next step is the last
    try:
        m.fit(x, y, epochs=4, verbose=0, callbacks=[lambda e, l: os.kill(os.getpid(), signal.SIGINT)])
        raise AssertionError("fit returned")
    except KeyboardInterrupt:
        pass
    assert m.history.epoch == [0]
    trained = m.get_weights()
    fresh = convoy.Model.from_text(MODEL).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(trained, fresh))
    assert np.isfinite(m.evaluate(x, y)[0])
    # Python's own handler is back: a SIGINT now is an ordinary KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_get_set_weights_round_trip_in_keras_layouts(data, tmp_path):
    x, y = data
    m = convoy.Model.from_text(MODEL)
    w = m.get_weights()
    assert [a.shape for a in w] == [(3, 3, 1, 4), (4,), (36, 16), (16,), (16, 3), (3,)]
    rng = np.random.default_rng(2)
    new = [rng.normal(size=a.shape).astype(np.float32) for a in w]
    m.set_weights(new)
    assert all(np.array_equal(a, b) for a, b in zip(m.get_weights(), new))
    p = m.predict(x[:5])
    # the same weights by hand: a dense layer's kernel is (in, out) as Keras's
    flat = convoy.Model.from_text(MODEL)
    flat.set_weights(new)
    assert np.array_equal(flat.predict(x[:5]), p)
    m.fit(x, y, epochs=1, verbose=0)
    m.save(str(tmp_path / "c.h5"))
    back = convoy.load(str(tmp_path / "c.h5"))
    assert all(np.array_equal(a, b) for a, b in zip(back.get_weights(), m.get_weights()))
    assert np.array_equal(back.predict(x), m.predict(x))
    back.set_weights(new)
    back.save(str(tmp_path / "d.h5"))
    assert all(np.array_equal(a, b) for a, b in zip(convoy.load(str(tmp_path / "d.h5")).get_weights(), new))


def test_fit_continues_from_set_weights_as_the_cli_init_from(data):
    x, y = data
    a = convoy.Model.from_text(MODEL)
    a.fit(x, y, epochs=1, verbose=0)
    b = convoy.Model.from_text(MODEL)
    b.set_weights(a.get_weights())
    a.fit(x, y, epochs=2, verbose=0)
    b.fit(x, y, epochs=2, verbose=0)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def test_grey_images_without_a_channel_train_as_with_one(data):
    x, y = data
    a, b = convoy.Model.from_text(MODEL), convoy.Model.from_text(MODEL)
    a.fit(x[:, :, :, 0], y, epochs=1, verbose=0)  # (N, H, W): a view with one channel added
    b.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))
    lines = []
    assert a.summary(print_fn=lines.append) is None
    assert lines[0] == 'Model: "sequential"' and any("conv2d (Conv2D)" in s for s in lines)
