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
# # Looking inside: attention gates and Grad-CAM on real images
#
# `keras_eca.visualization` reads what every attention block computes, in one
# forward pass through the model's own graph (nothing is rebuilt or copied):
#
# - `attention_gates(model, images)`: the channel gate of every ECA and SE
#   block, and Shuffle Attention's channel and spatial gates;
# - `plot_channel_weights`: the per-stage distribution of channel weights
#   across classes, the figure the SE and ECA papers use to show what
#   attention learns;
# - `plot_spatial_gates`: SA's spatial gates over the image;
# - `grad_cam` / `plot_grad_cam`: Grad-CAM for any registry model;
# - `write_attention_figure`: the one figure `keras_eca.finetune` writes into
#   a run folder.
#
# The images are photos that ship with scikit-image (`skimage.data`). The
# models are ECA-ResNet-50, SE-ResNet-50 (timm's `seresnet50`) and
# SA-ResNet-50 with **random weights**, so that the notebook runs offline:
# every plot works the same, but the maps only mean something with trained
# weights. The last section shows how to pass `weights=`.
#
# It runs offline on 2 CPU cores in two or three minutes; `SMOKE=1` uses small
# images and fewer views, in under a minute.

# %%
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow's C++ logs

import keras
import matplotlib.pyplot as plt
import numpy as np
import skimage.data
import skimage.transform
from IPython.display import Image, display

import keras_eca
import keras_eca.visualization as vis

SMOKE = os.environ.get("SMOKE") == "1"
IMAGE_SIZE = 64 if SMOKE else 224
VIEWS = 2 if SMOKE else 6  # random crops of every photo
WEIGHTS = None  # random weights, offline; "imagenet" with a network (see the end)
OUTPUT = pathlib.Path(tempfile.mkdtemp(prefix="inspect_attention_"))
print(keras.backend.backend(), keras.__version__, "SMOKE" if SMOKE else "full run")

# %% [markdown]
# ## Real images
#
# Four photos, centre-cropped to a square and resized; then a few random crops
# (and flips) of each, so that every photo stands for a small "class" of
# images. The models below take RGB values in [0, 255]
# (`include_preprocessing=True` normalises inside the model), so the images
# stay on that scale.

# %%
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]


def square(image, size):
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = image[top : top + side, left : left + side]
    return skimage.transform.resize(
        crop, (size, size), preserve_range=True, anti_aliasing=True
    ).astype("float32")


photos = np.stack(
    [square(getattr(skimage.data, name)(), IMAGE_SIZE) for name in PHOTOS]
)

rng = np.random.default_rng(0)


def random_view(image):
    image_size = image.shape[0]
    side = int(image_size * rng.uniform(0.6, 1.0))
    top, left = rng.integers(0, image_size - side + 1, size=2)
    view = square(image[top : top + side, left : left + side], image_size)
    return view[:, ::-1] if rng.random() < 0.5 else view


views = np.stack([random_view(photo) for photo in photos for _ in range(VIEWS)])
view_labels = np.repeat(np.arange(len(PHOTOS)), VIEWS)
print("photos", photos.shape, "views", views.shape)

figure, axes = plt.subplots(1, len(PHOTOS), figsize=(2.2 * len(PHOTOS), 2.4))
for ax, photo, name in zip(axes, photos, PHOTOS):
    ax.imshow(photo.astype("uint8"))
    ax.set_title(name, fontsize=9)
    ax.set_axis_off()
plt.show()

# %% [markdown]
# ## Three models with different attentions
#
# Registry models built with `weights=WEIGHTS` (random here) and
# `include_preprocessing=True`. `attention_layers` lists the attention blocks
# `attention_gates` will read, by key.

# %%
ARCHITECTURES = {"ECA": "eca_resnet50", "SE": "seresnet50", "SA": "sa_resnet50"}

keras.utils.set_random_seed(0)
models = {
    kind: keras_eca.applications.build_model(
        name,
        weights=WEIGHTS,
        include_preprocessing=True,
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
    )
    for kind, name in ARCHITECTURES.items()
}
for kind, model in models.items():
    blocks = vis.attention_layers(model)
    first = next(iter(blocks.values()))
    print(
        f"{kind}: {model.name}, {len(blocks)} {type(first).__name__} blocks, "
        f"{keras_eca.complexity.count_params(model):,} parameters"
    )

# %% [markdown]
# ## The gates
#
# For every block, `attention_gates` returns `{"channel": (N, C)}` (the
# sigmoid gate of every channel of every image) and, for Shuffle Attention,
# also `{"spatial": (N, H, W, C/2)}`, the gate of every position.
#
# Freshly initialised, only ECA's gates vary (its 1D kernels are random).
# SE-ResNet-50 starts the last BatchNorm of every block at zero (as timm
# does), so its SE layers see zeros and gate every channel with exactly 0.5;
# Shuffle Attention starts its gate weights at 0 and biases at 1 (as SA-Net
# does), so every gate is sigmoid(1) = 0.731. Training moves them: the plots
# below are flat here and informative with trained weights.

# %%
gates = {kind: vis.attention_gates(model, views) for kind, model in models.items()}
for kind, per_block in gates.items():
    key = list(per_block)[-1]
    shapes = {part: value.shape for part, value in per_block[key].items()}
    channel = per_block[key]["channel"]
    print(
        f"{kind} {key}: {shapes}; channel gate mean {channel.mean():.3f}, "
        f"min {channel.min():.3f}, max {channel.max():.3f}"
    )

# %% [markdown]
# ## Channel weights across classes, per stage
#
# The figure of the SE and ECA papers: for the last block of every stage, the
# mean gate of every channel, one line per class. Where the lines part, the
# block treats the classes differently; where they coincide, its attention is
# class-agnostic. Here a "class" is the crops of one photo. With random
# weights nothing was learnt: ECA's lines follow the random kernels, SE's lie
# flat at 0.5. With ImageNet weights the papers find the early stages
# class-agnostic and the last ones telling the classes apart.

# %%
for kind in ("ECA", "SE"):
    by_class = vis.gates_by_class(gates[kind], view_labels, PHOTOS)
    figure = vis.plot_channel_weights(
        by_class, title=f"{models[kind].name}: channel weights per photo"
    )
    display(figure)

# %% [markdown]
# ## Shuffle Attention's spatial gates
#
# SA splits every group of channels into a channel branch and a spatial
# branch; the spatial branch gates every position. The plot shows, for the
# last SA block of every stage, the mean spatial gate over the branch's
# channels, upsampled over the image (each map with its own colour range,
# given in its title).

# %%
sa_gates = vis.attention_gates(models["SA"], photos)
display(vis.plot_spatial_gates(photos, sa_gates, max_images=len(PHOTOS)))

# %% [markdown]
# ## Grad-CAM
#
# `grad_cam(model, images, class_index=None, layer_name=None)` weighs the
# channels of a feature map by the gradient of a class score: by default the
# top class of every image, at the last stage's output. It works for any
# registry model, with or without attention. The titles are the top ImageNet
# classes (`decode_predictions`), arbitrary with random weights.

# %%
for kind, model in models.items():
    heatmaps = vis.grad_cam(model, photos)
    scores = keras.ops.convert_to_numpy(model(photos, training=False))
    top = keras_eca.applications.decode_predictions(scores, top=1)
    titles = [f"{kind}: {name}\n({label[0][1]})" for name, label in zip(PHOTOS, top)]
    display(vis.plot_grad_cam(photos, heatmaps, titles=titles))

# %% [markdown]
# A chosen class and an earlier layer: the feature map of stage 4 has twice
# the resolution of stage 5. Class 281 is ImageNet's "tabby cat".

# %%
heatmaps = vis.grad_cam(
    models["ECA"], photos, class_index=281, layer_name="conv4_block6_out"
)
print("heatmaps", heatmaps.shape, heatmaps.dtype, heatmaps.min(), heatmaps.max())
titles = [f"class 281 on {name}" for name in PHOTOS]
display(vis.plot_grad_cam(photos, heatmaps, titles=titles))

# %% [markdown]
# ## The figure a fine-tuning run writes
#
# `write_attention_figure(model, images, labels, class_names, path)` picks
# the figure that fits the model: channel weights per class for ECA and SE,
# spatial gates for SA, Grad-CAM of the true class for a model without
# attention. It writes the PNG atomically and returns what it shows.
# `keras_eca.finetune` calls it on the validation images of a run.

# %%
for kind in ("ECA", "SA"):
    path = OUTPUT / f"attention_{kind.lower()}.png"
    description = vis.write_attention_figure(
        models[kind], views, view_labels, PHOTOS, path
    )
    print(f"{path.name}: {description}")
    display(Image(filename=str(path), width=600))

# %% [markdown]
# ## With trained weights
#
# The same calls on pretrained models give the meaningful maps. With a
# network, `weights="imagenet"` downloads the table's weights once into
# `$KERAS_HOME/keras_eca`, verifies and converts them
# (`keras_eca.applications.weights.list_weights()` lists the table):
#
# ```python
# eca = keras_eca.applications.ECAResNet50(
#     weights="imagenet", include_preprocessing=True
# )
# se = keras_eca.applications.build_model(
#     "seresnet50", weights="imagenet", include_preprocessing=True
# )
# ```
#
# Offline, pass a file you have instead (the official `.pth`, a timm
# `.safetensors`, a Keras `.weights.h5`), e.g.
# `weights="/data/eca_resnet50_k3557.pth.tar"`; the download error names the URL
# and the cache path where a downloaded file is picked up. SA-Net's weights
# are a manual download: the error says where to get them. Set `WEIGHTS =
# "imagenet"` in the first cell to rerun this notebook with them; for a
# model fine-tuned on your own images, load its `model.keras` from the run
# folder and call the same functions.
