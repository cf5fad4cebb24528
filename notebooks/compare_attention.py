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
# # ECA, SE or no attention? Comparing them on the same data
#
# This notebook trains ResNet-18, SE-ResNet-18 and ECA-ResNet-18 (the
# registry models `resnet18`, `se_resnet18` and `eca_resnet18`) on exactly the
# same batches of real images and compares what each costs and gives:
# validation accuracy, parameters, multiply-accumulates and the measured time of
# a training step.
#
# The images are the 1,797 handwritten digits (8x8 scans, upscaled to 32x32)
# that `keras_eca` ships in the package, so nothing is downloaded. Every model
# starts from random weights with the same seed and sees the same
# deterministic batches of `keras_eca.data.training_dataset`.
#
# It runs offline on 2 CPU cores in 3 to 7 minutes (about 5 CPU-minutes; the
# more other jobs share the cores, the longer); `SMOKE=1` runs one step per
# model in under a minute (the test suite does, and then also runs the models
# eagerly: tracing a graph would cost more than the step it speeds up, so the
# step times of a smoke run mean nothing).

# %%
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow's C++ logs

import keras
import matplotlib.pyplot as plt
import numpy as np

import keras_eca
import keras_eca.data
import keras_eca.finetune

SMOKE = os.environ.get("SMOKE") == "1"

MODELS = ["resnet18", "se_resnet18", "eca_resnet18"]
IMAGE_SIZE = 32  # the smallest input the ResNets take
BATCH_SIZE = 32
EPOCHS = 1 if SMOKE else 3
STEPS_PER_EPOCH = 1 if SMOKE else 15
VALIDATION_STEPS = 1 if SMOKE else None  # None: the whole validation split
STEP_ROUNDS = 1 if SMOKE else 3  # rounds of the step-time measurement
WARMUP_ROUNDS = 0 if SMOKE else 1
SEED = 0
print(keras.backend.backend(), keras.__version__, "SMOKE" if SMOKE else "full run")

# %% [markdown]
# ## The data
#
# `keras_eca.finetune.load_digits(32)` gives the embedded digits as 32x32 RGB
# images on 0..255 (upscaled from the 8x8 scans with an antialiased bilinear
# filter), the data `keras-eca finetune` trains on by default.
# `keras_eca.data.resolve_source` takes such `(images, labels)` arrays and
# holds out a stratified 20% of every class for validation (deterministic for
# `seed`).

# %%
images, labels = keras_eca.finetune.load_digits(IMAGE_SIZE)
class_names = [str(i) for i in range(10)]
print(images.shape, images.dtype, np.bincount(labels))

train_source = keras_eca.data.resolve_source(
    (images, labels), split="train", validation_fraction=0.2, seed=SEED
)
val_source = keras_eca.data.resolve_source(
    (images, labels), split="validation", validation_fraction=0.2, seed=SEED
)
print("train:", train_source.num_examples, "validation:", val_source.num_examples)

figure, axes = plt.subplots(1, 10, figsize=(10, 1.3))
for digit, ax in enumerate(axes):
    ax.imshow(images[labels == digit][0, :, :, 0], cmap="gray_r")
    ax.set_title(class_names[digit], fontsize=9)
    ax.set_axis_off()
plt.show()


# %% [markdown]
# ## The same batches for every model
#
# `training_dataset(source, seed=..., epoch=...)` is deterministic: for a seed
# and an epoch it gives the same shuffle, the same random crops and the same
# order every time it is called, so each model sees identical batches. Flips
# are off (a mirrored 3 is no 3) and the crops keep at least 70% of the
# image. Both pipelines normalise with the ImageNet mean and std, as the
# models expect.

# %%
def train_batches(epoch):
    return keras_eca.data.training_dataset(
        train_source,
        image_size=IMAGE_SIZE,
        global_batch_size=BATCH_SIZE,
        seed=SEED,
        epoch=epoch,
        steps=STEPS_PER_EPOCH,
        scale=(0.7, 1.0),
        flip=False,
    )


validation_batches = keras_eca.data.evaluation_dataset(
    val_source, image_size=IMAGE_SIZE, crop_pct=1.0, batch_size=64
)
if VALIDATION_STEPS:
    validation_batches = validation_batches.take(VALIDATION_STEPS)

first_images, first_labels = next(iter(train_batches(0)))
print(first_images.shape, first_images.dtype, first_labels[:10].numpy())


# %% [markdown]
# ## Training
#
# One `fit` per epoch on that epoch's batches, the same learning rate and
# optimizer for every model.

# %%
def train(name):
    keras.utils.set_random_seed(SEED)  # every model initialised from the same seed
    model = keras_eca.applications.build_model(
        name,
        weights=None,  # random initialisation: nothing is downloaded
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        classes=len(class_names),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        run_eagerly=SMOKE,
    )
    history = {"accuracy": [], "val_accuracy": []}
    for epoch in range(EPOCHS):
        logs = model.fit(
            train_batches(epoch),
            validation_data=validation_batches,
            initial_epoch=epoch,
            epochs=epoch + 1,
            shuffle=False,  # the batches come shuffled
            verbose=0,
        ).history
        for key in history:
            history[key] += logs[key]
        print(
            f"{name:<14} epoch {epoch + 1}/{EPOCHS}  "
            f"accuracy {logs['accuracy'][-1]:.3f}  "
            f"val_accuracy {logs['val_accuracy'][-1]:.3f}"
        )
    return model, history


results = {}
for name in MODELS:
    start = time.perf_counter()
    model, history = train(name)
    results[name] = {
        "model": model,
        "history": history,
        "val_accuracy": history["val_accuracy"][-1],
        "params": keras_eca.complexity.count_params(model),
        "macs": keras_eca.complexity.count_ops(model, "macs"),
        "wall_s": time.perf_counter() - start,
    }

# %% [markdown]
# ## Step time, measured fairly
#
# Timing each model while it trains would compare moments, not models: on a
# shared machine the load changes from one minute to the next. So, after
# training, the models take turns: one training step each on the same batch,
# round after round, and the median over the rounds is the step time. A
# warm-up round comes first and is left out. These extra steps change the weights, after
# the accuracy was measured.

# %%
step_images, step_labels = first_images.numpy(), first_labels.numpy()
step_seconds = {name: [] for name in MODELS}
for round_ in range(WARMUP_ROUNDS + STEP_ROUNDS):
    for name in MODELS:
        start = time.perf_counter()
        results[name]["model"].train_on_batch(step_images, step_labels)
        if round_ >= WARMUP_ROUNDS:
            step_seconds[name].append(time.perf_counter() - start)
for name in MODELS:
    results[name]["step_ms"] = 1000 * float(np.median(step_seconds[name]))
    print(f"{name:<14} {results[name]['step_ms']:7.1f} ms per step of {BATCH_SIZE}")

# %% [markdown]
# ## The table
#
# Parameters are counted as the papers count them
# (`keras_eca.complexity.count_params`: BatchNorm statistics left out), MACs
# for one 32x32 image (`count_ops(model, "macs")`). ECA adds a few weights per
# block (its 1D kernel), SE two fully connected layers per block. "wall s" is
# the whole run of a model: building, tracing, training and validating.

# %%
plain = results[MODELS[0]]
header = (
    f"{'model':<14}{'val acc':>9}{'params':>12}{'vs plain':>10}"
    f"{'MACs':>12}{'step ms':>9}{'wall s':>8}"
)
print(header)
print("-" * len(header))
for name, row in results.items():
    print(
        f"{name:<14}{row['val_accuracy']:>9.3f}{row['params']:>12,}"
        f"{row['params'] - plain['params']:>+10,}{row['macs']:>12,}"
        f"{row['step_ms']:>9.1f}{row['wall_s']:>8.1f}"
    )

# %%
figure, axes = plt.subplots(1, 3, figsize=(11, 3.2))
colors = ["tab:gray", "tab:orange", "tab:blue"]
for ax, (key, label) in zip(
    axes,
    [
        ("val_accuracy", "validation accuracy"),
        ("params", "parameters (millions)"),
        ("step_ms", "training step (ms)"),
    ],
):
    values = [results[name][key] for name in MODELS]
    if key == "params":
        values = [v / 1e6 for v in values]
    bars = ax.bar(MODELS, values, color=colors)
    ax.bar_label(bars, fmt="%.3g", fontsize=8)
    ax.set_title(label, fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
figure.suptitle(
    f"{EPOCHS} epochs x {STEPS_PER_EPOCH} steps of {BATCH_SIZE} digits, "
    f"{IMAGE_SIZE}x{IMAGE_SIZE}, seed {SEED}",
    fontsize=10,
)
figure.tight_layout()
plt.show()

# %% [markdown]
# ## Reading the numbers
#
# - **Parameters**: ECA's overhead is a few dozen weights on 11 million; SE's
#   is hundreds of thousands. That is the point of the ECA paper.
# - **Step time**: both attentions add a global pooling and a gate per block;
#   on a CPU at 32x32 the difference is small, and other processes on the
#   cores make it noisy even with the models taking turns. Measure on your own
#   hardware and image size: `keras-eca benchmark` measures throughput and
#   memory of the attention models against their plain baselines.
# - **Accuracy**: one seed, random initialisation and a few dozen steps say
#   little about which attention is better; the differences here are within
#   the noise of a single run. For a real comparison, train longer, repeat
#   over several seeds, and start from pretrained weights where the table has
#   them: `resnet18.tv_in1k` (torchvision) and `eca_resnet18.official_in1k`
#   (the ECA paper's) for these two, not SE-ResNet-18
#   (`keras_eca.applications.weights.list_weights()` lists them all).
#   `keras_eca.finetune` puts a new head on such a pretrained backbone.
