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
# # Fine-tune an ECA model on a folder of images, then serve it
#
# The everyday job: a folder with one subfolder of images per class, a
# pretrained ECA network, a few epochs of transfer learning, a look at how
# well it did, and a TensorFlow SavedModel that classifies new image files.
#
# 1. Write a folder of real images: crops of five textures and photos that
#    ship with scikit-image (`skimage.data`), as JPEG files in class
#    subfolders. Nothing is downloaded.
# 2. `keras_eca.finetune.finetune(dataset=folder, ...)`: train, validate on
#    a stratified held-out part, write a run folder (model, SavedModel,
#    report, figures).
# 3. Evaluate: the report (accuracy, per-class precision / recall / F1,
#    confusion matrix) and the figures.
# 4. Reload the SavedModel with `tf.saved_model.load` and serve images it has
#    never seen, as encoded bytes and as float arrays of any size.
#
# Offline, the model starts from random weights (`weights=None`); with a
# network, `weights="imagenet"` starts from the ECA paper's ImageNet weights,
# which is what transfer learning is for (see the end). It runs on 2 CPU cores
# in about three minutes; `SMOKE=1` runs it on a handful of images in about a
# minute (mostly graph tracing and the SavedModel export).

# %%
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # quiet TensorFlow's C++ logs

import keras
import numpy as np
import PIL.Image
import skimage.data
import tensorflow as tf
from IPython.display import Image, display

import keras_eca
import keras_eca.finetune

SMOKE = os.environ.get("SMOKE") == "1"
IMAGES_PER_CLASS = 8 if SMOKE else 48
IMAGE_SIZE = 32 if SMOKE else 48  # the model's input side
EPOCHS = 1 if SMOKE else 6
BATCH_SIZE = 8 if SMOKE else 16
WORK = pathlib.Path(tempfile.mkdtemp(prefix="finetune_folder_"))
DATA = WORK / "textures"  # the folder of class subfolders
RUN = WORK / "run"  # the run folder finetune writes
print(keras.backend.backend(), keras.__version__, "SMOKE" if SMOKE else "full run")

# %% [markdown]
# ## 1. A folder of images
#
# Five classes, each from one picture of `skimage.data`. The left 70% of
# every picture gives the training folder, the right 30% the "new" images
# served at the end, so those are truly unseen. Every image is a random
# square crop (a fifth to a quarter of the picture's height), rotated by a
# multiple of 90 degrees, possibly mirrored, resized to 96x96 and saved as
# JPEG. The layout is the one `finetune` (and `keras-eca finetune --dataset`)
# reads: `textures/<class>/<image>.jpg`, classes in sorted order.

# %%
def rgb(image):
    image = np.asarray(image)
    if image.ndim == 2:  # greyscale
        return np.repeat(image[..., None], 3, axis=-1)
    return image[..., :3]


PICTURES = {
    "brick": rgb(skimage.data.brick()),
    "grass": rgb(skimage.data.grass()),
    "gravel": rgb(skimage.data.gravel()),
    "stars": rgb(skimage.data.hubble_deep_field()),
    "tissue": rgb(skimage.data.immunohistochemistry()),
}
rng = np.random.default_rng(0)


def random_crop(picture, size=96):
    height, width = picture.shape[:2]
    side = int(rng.uniform(0.2, 0.28) * height)
    top = rng.integers(0, height - side + 1)
    left = rng.integers(0, width - side + 1)
    crop = np.rot90(picture[top : top + side, left : left + side], rng.integers(4))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return PIL.Image.fromarray(np.ascontiguousarray(crop)).resize(
        (size, size), PIL.Image.BILINEAR
    )


new_images = []  # (path, true class): the unseen images served at the end
for name, picture in PICTURES.items():
    split = int(0.7 * picture.shape[1])
    (DATA / name).mkdir(parents=True)
    for i in range(IMAGES_PER_CLASS):
        random_crop(picture[:, :split]).save(DATA / name / f"{i:03d}.jpg", quality=90)
    (WORK / "new").mkdir(exist_ok=True)
    path = WORK / "new" / f"{name}.jpg"
    random_crop(picture[:, split:]).save(path, quality=90)
    new_images.append((path, name))

print({name: len(list((DATA / name).iterdir())) for name in PICTURES})
display(*[Image(filename=str(DATA / name / "000.jpg"), width=96) for name in PICTURES])

# %% [markdown]
# ## 2. Fine-tune
#
# `finetune` reads the folder, holds out a stratified 20% of every class for
# validation, trains with augmentation (random resized crops, flips), early
# stopping on the validation loss with the best weights restored, and class
# weights for imbalanced folders. From pretrained weights it first trains a
# new classifier on the frozen backbone, then the whole network at a lower
# learning rate with the BatchNorm statistics kept; from random weights it
# trains everything at once. It prints its progress and the validation
# accuracy, and returns a `FinetuneResult`.

# %%
result = keras_eca.finetune.finetune(
    dataset=str(DATA),
    model="eca_resnet18",
    weights=None,  # offline: random initialisation; "imagenet" with a network
    image_size=IMAGE_SIZE,
    batch_size=BATCH_SIZE,
    epochs=EPOCHS,
    seed=0,
    output=str(RUN),
)

# %%
print("validation accuracy:", round(result.accuracy, 3))
print("run folder:", result.run_dir)
for name in sorted(result.files):
    print("  ", name)

# %% [markdown]
# ## 3. Evaluate
#
# `report.json` (also `result.report`) holds the validation accuracy, the
# per-class precision, recall and F1, the confusion matrix (rows: true class,
# columns: predicted), the parameters, the time, the settings and the package
# versions. The run folder also has the training curves and the confusion
# matrix as figures, and the attention figure of `keras_eca.visualization`
# (`write_attention_figure`): the mean ECA gate of every channel per class, for
# the last block of every stage, on the validation images. Trained, the lines
# of the classes part; the gates of a fresh model do not tell classes apart
# (see `inspect_attention.ipynb`).

# %%
report = result.report
print(
    f"accuracy {report['accuracy']:.3f} on {report['validation_images']} "
    "validation images"
)
print(f"{'class':<8}{'precision':>10}{'recall':>8}{'F1':>7}{'images':>8}")
for name, row in report["per_class"].items():
    print(
        f"{name:<8}{row['precision']:>10.2f}{row['recall']:>8.2f}"
        f"{row['f1']:>7.2f}{row['support']:>8}"
    )
print("confusion matrix (rows: true class, columns: predicted):")
print(np.array(report["confusion_matrix"]))

# %%
for figure in ("curves.png", "confusion_matrix.png", "attention.png"):
    print(figure)
    display(Image(filename=str(result.run_dir / figure), width=640))

# %% [markdown]
# ## 4. Serve the SavedModel
#
# `saved_model/` needs TensorFlow alone (no `keras_eca`, no Keras) to be
# served. It has two signatures, each returning class probabilities, the top
# class ids, their probabilities and their names:
#
# - `serve_bytes` (also `serving_default`): a batch of encoded JPEG / PNG /
#   BMP / GIF files, as a 1-D `tf.string` tensor;
# - `serve_images`: float RGB images on 0..255 of any size.
#
# Both prepare an image as the validation images were prepared (resize,
# centre crop), so a served image gets the same answer as in validation.

# %%
loaded = tf.saved_model.load(str(result.run_dir / "saved_model"))
print(sorted(loaded.signatures))

files = [path.read_bytes() for path, _ in new_images]
served = loaded.serve_bytes(tf.constant(files))
for (path, truth), names, probabilities in zip(
    new_images, served["top_class_names"].numpy(), served["top_probabilities"].numpy()
):
    print(
        f"{path.name:<12} true {truth:<7} predicted {names[0].decode():<7} "
        f"({probabilities[0]:.2f}); next {names[1].decode()} ({probabilities[1]:.2f})"
    )

# %% [markdown]
# The same images as arrays, at another size (the signature resizes them),
# give the same classes:

# %%
arrays = np.stack(
    [
        np.asarray(PIL.Image.open(path).resize((120, 120), PIL.Image.BILINEAR))
        for path, _ in new_images
    ]
).astype("float32")
from_arrays = loaded.serve_images(tf.constant(arrays))
print(arrays.shape, from_arrays["top_class_names"].numpy()[:, 0])
correct = [
    names[0].decode() == truth
    for names, (_, truth) in zip(served["top_class_names"].numpy(), new_images)
]
print(f"unseen images right: {sum(correct)} of {len(correct)}")

# %% [markdown]
# `keras_eca.finetune.predict` wraps the same calls: image files (or bytes,
# or an array) in, the top classes out.

# %%
paths = [path for path, _ in new_images]
predictions = keras_eca.finetune.predict(result.run_dir, paths, top=2)
for (path, truth), prediction in zip(new_images, predictions):
    print(
        path.name, truth, prediction["classes"],
        np.round(prediction["probabilities"], 3),
    )

# %% [markdown]
# ## The same from the command line, and with pretrained weights
#
# ```bash
# keras-eca finetune --dataset textures/ --model eca_resnet18 --weights imagenet \
#     --image-size 224 --epochs 10 --output runs/textures
# keras-eca predict runs/textures new/brick.jpg new/stars.jpg
# ```
#
# With a network, `weights="imagenet"` (the default of `finetune` and of the
# command) downloads the ECA paper's ImageNet weights once into
# `$KERAS_HOME/keras_eca` and verifies them; offline, the run says so and
# trains from random weights instead. A local file works too:
# `weights="/data/eca_resnet18_k3577.pth.tar"`. Pretrained runs train the
# new classifier first and then the backbone; they get far higher accuracy
# from far fewer images than this from-scratch run. The model's own size
# (`image_size=224`, the default with pretrained weights) suits them best.
