# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Attention layers in your own Keras model
#
# This notebook puts every attention layer of `keras_eca` into a small CNN,
# compares what each one costs, trains on a toy task, and saves the result as
# `.keras` and as a TensorFlow SavedModel. It runs offline on a CPU in about a
# minute; set `SMOKE=1` for the shortest run (the test suite does).

# %%
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow's C++ logs

import keras
import numpy as np

import keras_eca

SMOKE = os.environ.get("SMOKE") == "1"
print(keras.backend.backend(), keras.__version__)
print(keras_eca.layers.list_attention())


# %% [markdown]
# ## A CNN with a pluggable attention
#
# `keras_eca.layers.get_attention` turns a name into a fresh layer. Each layer
# infers its channel count when built, so the same call works after any
# convolution. `None` means no attention.

# %%
def small_cnn(attention=None, classes=4, **attention_kwargs):
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for stage, width in enumerate((32, 64, 128)):
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        gate = keras_eca.layers.get_attention(attention, **attention_kwargs)
        if gate is not None:
            x = gate(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes)(x)
    return keras.Model(inputs, outputs, name=f"cnn_{attention}")


# %% [markdown]
# ## What each attention costs
#
# The parameter overhead follows the formulas of the ECA paper's Table 2: ECA
# adds `k` weights per layer, SE `2C²/r` (+ biases), SA `6·C/(2G)`. SA needs the
# channel count divisible by `2·groups`, so it gets `groups=16` here.

# %%
def trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)

base = trainable(small_cnn(None))
print(f"{'attention':<10}{'params':>10}{'overhead':>10}")
for name in keras_eca.layers.list_attention():
    kwargs = {"groups": 16} if name == "sa" else {}
    params = trainable(small_cnn(name, **kwargs))
    print(f"{name:<10}{params:>10,}{params - base:>+10,}")

# %% [markdown]
# ## Train on a toy task
#
# Four classes: which colour channel is brightest, or none. Channel attention is
# made for exactly this kind of signal.

# %%
rng = np.random.default_rng(0)

def toy_data(n):
    labels = rng.integers(0, 4, n)
    images = rng.uniform(0, 0.5, (n, 32, 32, 3)).astype("float32")
    for i, label in enumerate(labels):
        if label < 3:
            images[i, :, :, label] += 0.5
    return images, labels

x_train, y_train = toy_data(128 if SMOKE else 1024)
x_val, y_val = toy_data(64 if SMOKE else 256)

model = small_cnn("eca")
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
history = model.fit(
    x_train, y_train, validation_data=(x_val, y_val),
    epochs=1 if SMOKE else 3, batch_size=32, verbose=2,
)
print("validation accuracy:", history.history["val_accuracy"][-1])

# %% [markdown]
# ## Save and export
#
# `.keras` keeps the attention layers as themselves (they are registered for
# serialization); `model.export` writes a TensorFlow SavedModel with a `serve`
# endpoint.

# %%
workdir = tempfile.mkdtemp()
path = os.path.join(workdir, "cnn_eca.keras")
model.save(path)
restored = keras.saving.load_model(path)
np.testing.assert_allclose(restored.predict(x_val[:8], verbose=0),
                           model.predict(x_val[:8], verbose=0), atol=1e-6)
print(type(restored.layers[4]).__name__)

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    export_dir = os.path.join(workdir, "cnn_eca_savedmodel")
    model.export(export_dir, verbose=False)
    reloaded = tf.saved_model.load(export_dir)  # keep a reference: it owns the variables
    served = reloaded.serve(x_val[:8]).numpy()
    np.testing.assert_allclose(served, model.predict(x_val[:8], verbose=0), atol=1e-5)
    print("SavedModel serves the same logits")
