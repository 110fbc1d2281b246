"""Files in the layout of Keras's model.save("m.h5") (the root attribute model_config, the JSON of
the model's get_config(), and model_weights/<layer>/<weight name> with the attributes layer_names
and weight_names), written with h5py and NumPy only, with random weights; a NumPy forward pass of
each model as the reference convoy's predictions must match; and the damaged variants convoy
must refuse. Used by tests/e2e_keras_import.sh.   usage: keras_h5_models.py DIR"""
import copy
import json
import os
import sys

import h5py
import numpy as np

rng = np.random.default_rng(27)


def layer(cls, name, **cfg):
    return {"class_name": cls, "config": dict(name=name, trainable=True, dtype="float32", **cfg)}


def save(path, config, weights, wname=lambda layer, w: f"{layer}/{w}:0", text=None):
    """weights: {layer name: [(weight, array)]}, in the model's layer order"""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.13.1"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = (text if text is not None else json.dumps(config)).encode("utf8")
        mw = f.create_group("model_weights")
        names = [l["config"]["name"] for l in config["config"]["layers"] if l["class_name"] != "InputLayer"]
        mw.attrs["layer_names"] = np.array([n.encode() for n in names])
        mw.attrs["backend"] = "tensorflow"
        weighted = {l["config"]["name"] for l in config["config"]["layers"]
                    if l["class_name"] in ("Conv2D", "Dense", "BatchNormalization")}
        for n in names:
            if n in weighted and n not in weights:
                continue  # a layer's weights left out: its group is missing
            g = mw.create_group(n)
            ws = weights.get(n, [])
            g.attrs["weight_names"] = np.array([wname(n, w).encode() for w, _ in ws], dtype="S")
            for w, a in ws:
                g.create_dataset(wname(n, w), data=a.astype(np.float32))


def normal(*shape, s=0.5):
    return rng.normal(0, s, shape).astype(np.float32)


# ---- the NumPy reference (TensorFlow's rules) ------------------------------------------------
def conv(x, k, b, stride, padding):
    n, h, w, c = x.shape
    kh, kw, _, o = k.shape
    if padding == "same":
        oh, ow = -(-h // stride[0]), -(-w // stride[1])
        ph, pw = max((oh - 1) * stride[0] + kh - h, 0), max((ow - 1) * stride[1] + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    oh, ow = (x.shape[1] - kh) // stride[0] + 1, (x.shape[2] - kw) // stride[1] + 1
    y = np.zeros((n, oh, ow, o), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw, :]
            y[:, i, j, :] = np.tensordot(patch, k, axes=([1, 2, 3], [0, 1, 2]))
    return y + (b if b is not None else 0)


def maxpool(x, p):
    n, h, w, c = x.shape
    oh, ow = (h - p) // p + 1, (w - p) // p + 1
    return x[:, :oh * p, :ow * p, :].reshape(n, oh, p, ow, p, c).max(axis=(2, 4))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


relu = lambda z: np.maximum(z, 0)


def cnn(d):
    """conv, batchnorm, relu, pool, conv, flatten, dense, dropout, dense softmax on 10x10x2 images"""
    k1, b1 = normal(3, 3, 2, 4), normal(4, s=0.1)
    g, be, mu, var = (1 + normal(4, s=0.2)), normal(4, s=0.1), normal(4, s=0.2), rng.uniform(0.5, 2, 4).astype(np.float32)
    k2, b2 = normal(3, 2, 4, 6), normal(6, s=0.1)
    k3, b3 = normal(3 * 4 * 6, 8, s=0.3), normal(8, s=0.1)
    k4, b4 = normal(8, 5), normal(5, s=0.1)
    cfg = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 10, 10, 2], "dtype": "float32",
                                                "sparse": False, "ragged": False, "name": "input_1"}},
        layer("Conv2D", "conv2d", filters=4, kernel_size=[3, 3], strides=[1, 1], padding="same",
              data_format="channels_last", dilation_rate=[1, 1], groups=1, activation="linear", use_bias=True),
        layer("BatchNormalization", "batch_normalization", axis=[3], momentum=0.9, epsilon=0.001, center=True,
              scale=True),
        layer("ReLU", "re_lu", max_value=None, negative_slope=0.0, threshold=0.0),
        layer("MaxPooling2D", "max_pooling2d", pool_size=[2, 2], padding="valid", strides=[2, 2],
              data_format="channels_last"),
        layer("Conv2D", "conv2d_1", filters=6, kernel_size=[3, 2], strides=[1, 1], padding="valid",
              data_format="channels_last", dilation_rate=[1, 1], groups=1, activation="relu", use_bias=True),
        layer("Flatten", "flatten", data_format="channels_last"),
        layer("Dense", "dense", units=8, activation="relu", use_bias=True),
        layer("Dropout", "dropout", rate=0.25, noise_shape=None, seed=None),
        layer("Dense", "dense_1", units=5, activation="softmax", use_bias=True)]}}
    cfg["config"]["layers"][1]["config"]["trainable"] = False  # kept frozen by convoy too
    w = {"conv2d": [("kernel", k1), ("bias", b1)],
         "batch_normalization": [("gamma", g), ("beta", be), ("moving_mean", mu), ("moving_variance", var)],
         "conv2d_1": [("kernel", k2), ("bias", b2)], "dense": [("kernel", k3), ("bias", b3)],
         "dense_1": [("kernel", k4), ("bias", b4)]}
    save(f"{d}/cnn.h5", cfg, w)
    x = rng.normal(0, 1, (24, 10, 10, 2)).astype(np.float32)
    with h5py.File(f"{d}/d.h5", "w") as f:
        f["x"] = x
        f["y"] = (np.arange(24) % 5).astype(np.int64)
    x = x.astype(np.float64)
    z = conv(x, k1, b1, (1, 1), "same")
    z = relu((z - mu) / np.sqrt(var.astype(np.float64) + 0.001) * g + be)
    z = relu(conv(maxpool(z, 2), k2, b2, (1, 1), "valid")).reshape(len(x), -1)
    np.save(f"{d}/want_cnn.npy", softmax(relu(z @ k3 + b3) @ k4 + b4))
    return cfg, w


def mlp(d):
    """Keras 3's spellings: batch_shape, weight names without :0, LeakyReLU's negative_slope; a
    Rescaling of uint8 pixels and a frozen dense layer"""
    k1, b1, k2, b2 = normal(36, 16), normal(16, s=0.1), normal(16, 3), normal(3, s=0.1)
    cfg = {"class_name": "Sequential", "config": {"name": "mlp", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 6, 6, 1], "dtype": "float32", "name": "pixels"}},
        layer("Rescaling", "rescaling", scale=1 / 255, offset=0.0),
        layer("Flatten", "flatten"),
        layer("Dense", "hidden", units=16, activation=None, use_bias=True),
        layer("LeakyReLU", "leaky", negative_slope=0.1),
        layer("Dense", "out", units=3, activation="softmax")]}}
    cfg["config"]["layers"][3]["config"]["trainable"] = False
    save(f"{d}/mlp.h5", cfg, {"hidden": [("kernel", k1), ("bias", b1)], "out": [("kernel", k2), ("bias", b2)]},
         wname=lambda l, w: f"mlp/{l}/{w}")
    x = rng.integers(0, 256, (12, 6, 6, 1)).astype(np.uint8)
    with h5py.File(f"{d}/du.h5", "w") as f:
        f["x"] = x
        f["y"] = (np.arange(12) % 3).astype(np.int64)
    z = x.reshape(12, -1).astype(np.float64) / 255 @ k1 + b1
    np.save(f"{d}/want_mlp.npy", softmax(np.where(z > 0, z, 0.1 * z) @ k2 + b2))


def functional(d):
    """a Functional model shaped as a chain (Keras 2's inbound_nodes)"""
    k1, b1 = normal(4, 3), normal(3)
    ls = [{"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
           "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "x"}},
          dict(layer("Dense", "d", units=3, activation="sigmoid"), name="d", inbound_nodes=[[["x", 0, 0, {}]]])]
    cfg = {"class_name": "Functional", "config": {"name": "model", "layers": ls, "input_layers": [["x", 0, 0]],
                                                  "output_layers": [["d", 0, 0]]}}
    save(f"{d}/chain.h5", cfg, {"d": [("kernel", k1), ("bias", b1)]})
    x = rng.normal(0, 1, (6, 4)).astype(np.float32)
    with h5py.File(f"{d}/dv.h5", "w") as f:
        f["x"] = x
        f["y"] = rng.uniform(0, 1, (6, 3)).astype(np.float32)
    np.save(f"{d}/want_chain.npy", 1 / (1 + np.exp(-(x.astype(np.float64) @ k1 + b1))))
    return cfg


def refused(d, cfg, w, fcfg):
    """the variants convoy refuses, each named for the test's table"""
    def variant(name, edit=None, weights=w, **kw):
        c = copy.deepcopy(cfg)
        if edit:
            edit(c["config"]["layers"])
        save(f"{d}/{name}.h5", c, weights, **kw)

    def put(i, **kv):
        return lambda ls: ls[i]["config"].update(kv)

    variant("unknown", lambda ls: ls.insert(7, layer("LSTM", "lstm", units=4)))
    variant("channels_first", put(5, data_format="channels_first"))
    variant("dilated", put(5, dilation_rate=[2, 2]))
    variant("grouped", put(5, groups=2))
    variant("elu", put(7, activation="elu"))
    variant("dense_map", lambda ls: ls.pop(6))
    variant("rescale_late", lambda ls: ls.insert(3, layer("Rescaling", "rescaling", scale=0.5, offset=0.0)))
    variant("pool_same", put(4, padding="same", pool_size=[3, 3]))
    variant("no_weights", weights={k: v for k, v in w.items() if k != "dense"})
    variant("no_bias", weights=dict(w, dense=w["dense"][:1]))
    bad = dict(w, conv2d_1=[("kernel", normal(3, 3, 4, 6)), w["conv2d_1"][1]])
    variant("shape", weights=bad)
    nan = w["dense_1"][0][1].copy()
    nan[2, 3] = np.nan
    variant("nan", weights=dict(w, dense_1=[("kernel", nan), w["dense_1"][1]]))
    variant("newline", lambda ls: ls[7].update(class_name="Bad\nClass"))
    save(f"{d}/malformed.h5", cfg, w, text=json.dumps(cfg)[:-40])
    with h5py.File(f"{d}/weights_only.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
    fc = copy.deepcopy(fcfg)
    fc["config"]["layers"].append(dict(layer("Add", "add"), name="add", inbound_nodes=[[["x", 0, 0, {}], ["d", 0, 0, {}]]]))
    save(f"{d}/branchy.h5", fc, {})


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    c, w = cnn(out)
    mlp(out)
    refused(out, c, w, functional(out))
