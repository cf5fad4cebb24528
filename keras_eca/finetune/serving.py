"""The run's SavedModel: two serving signatures, and `predict`.

`export_serving_model` writes a SavedModel (through
`keras.export.ExportArchive`) with two endpoints, each also a signature:

- `serve_bytes` (and `serving_default`): a 1-D `tf.string` batch of
  encoded JPEG / PNG / BMP / GIF files;
- `serve_images`: a float32 batch `(N, H, W, 3)` of RGB images on 0..255,
  of any size.

Both prepare every image as the run's validation data was prepared
(`keras_eca.data.evaluation_transform`: the shorter side resized to
`image_size / crop_pct` with the weights' interpolation and PIL's 8-bit
rounding, then the centre `image_size` square; JPEGs decoded as PIL does)
and return a dict:

- `probabilities`: float32 `(N, num_classes)`;
- `top_class_ids`: int32 `(N, k)`, the `k = min(5, num_classes)` most
  probable classes, most probable first;
- `top_probabilities`: float32 `(N, k)`;
- `top_class_names`: string `(N, k)`.

The SavedModel holds only TensorFlow ops: `tf.saved_model.load` serves it
without keras_eca (or Keras) installed.
"""

import os
import pathlib

import numpy as np
import tensorflow as tf

import keras

from keras_eca import inference
from keras_eca.data import transforms

SAVED_MODEL = "saved_model"
TOP_K = 5
BYTES_ENDPOINT = "serve_bytes"
IMAGES_ENDPOINT = "serve_images"


def export_serving_model(
    model, path, *, class_names, image_size, crop_pct, interpolation
):
    """Writes the serving SavedModel of a fine-tuned `model` to `path`.

    Args:
        model: the fine-tuning model (RGB on 0..255 in, probabilities out).
        path: a folder that does not exist yet.
        class_names: the class names, in label order.
        image_size, crop_pct, interpolation: the evaluation preprocessing.

    Returns:
        `path` as a `pathlib.Path`.
    """
    # Served in its inference form: BatchNorm folded into the convs, lean
    # gates (the same probabilities to float32 round-off).
    model = inference.inference_model(model)
    names = tf.constant([str(name) for name in class_names], tf.string)
    k = min(TOP_K, len(class_names))
    image_spec = tf.TensorSpec([image_size, image_size, 3], tf.float32)

    def prepare(image):
        return transforms.evaluation_transform(
            image,
            image_size=image_size,
            crop_pct=crop_pct,
            interpolation=interpolation,
        )

    def decode_and_prepare(data):
        return prepare(
            transforms.decode_image(data, dct_method="INTEGER_ACCURATE")
        )

    def classify(images):
        probabilities = tf.cast(model(images, training=False), tf.float32)
        top = tf.math.top_k(probabilities, k=k)
        return {
            "probabilities": probabilities,
            "top_class_ids": top.indices,
            "top_probabilities": top.values,
            "top_class_names": tf.gather(names, top.indices),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve_bytes(images):
        prepared = tf.map_fn(
            decode_and_prepare, images, fn_output_signature=image_spec
        )
        return classify(prepared)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
        ]
    )
    def serve_images(images):
        prepared = tf.map_fn(prepare, images, fn_output_signature=image_spec)
        return classify(prepared)

    archive = keras.export.ExportArchive()
    archive.track(model)
    # The first endpoint is also `serving_default` (TF Serving's).
    archive.add_endpoint(BYTES_ENDPOINT, serve_bytes)
    archive.add_endpoint(IMAGES_ENDPOINT, serve_images)
    archive.write_out(os.fspath(path), verbose=False)
    return pathlib.Path(path)


def find_saved_model(path):
    """The SavedModel folder of a run folder or a SavedModel folder."""
    path = pathlib.Path(path).expanduser()
    for candidate in (path / SAVED_MODEL, path):
        if (candidate / "saved_model.pb").is_file():
            return candidate
    raise ValueError(
        f"{str(path)!r} is neither a finetune run folder (with "
        f"{SAVED_MODEL}/) nor a SavedModel folder (with saved_model.pb). "
        f"Received: path={str(path)!r}"
    )


def load_serving_model(path):
    """`tf.saved_model.load` of a run folder's (or a folder's) SavedModel;
    call `.serve_bytes(...)` or `.serve_images(...)` on the result."""
    loaded = tf.saved_model.load(os.fspath(find_saved_model(path)))
    for endpoint in (BYTES_ENDPOINT, IMAGES_ENDPOINT):
        if not hasattr(loaded, endpoint):
            raise ValueError(
                f"The SavedModel {str(path)!r} has no {endpoint!r} endpoint: "
                "it was not written by keras_eca.finetune."
            )
    return loaded


def predict(model_path, images, top=None):
    """Classifies images with a fine-tuning run's SavedModel.

    Args:
        model_path: a run folder of `finetune`, or its `saved_model/`.
        images: a list of image files (paths) or encoded bytes, served by
            the bytes signature; or a float/uint8 array `(N, H, W, 3)` (or
            one image `(H, W, 3)`) on 0..255, served by the images
            signature.
        top: how many classes to return per image, at most
            `min(5, num_classes)` (the default).

    Returns:
        A list with a dict per image: `classes` (names, most probable
        first), `class_ids`, `probabilities` (of those classes) and
        `all_probabilities` (every class, in label order).

    Raises:
        ValueError: for a folder without a SavedModel, an unreadable file,
            or a bad `top`.
    """
    loaded = load_serving_model(model_path)
    if isinstance(images, np.ndarray) or tf.is_tensor(images):
        array = np.asarray(images, np.float32)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(
                "An image array must be (N, H, W, 3) or (H, W, 3) RGB on "
                f"0..255. Received: shape={array.shape}"
            )
        outputs = loaded.serve_images(tf.constant(array))
    else:
        if isinstance(images, (str, bytes, os.PathLike)):
            images = [images]
        encoded = [_read(image) for image in images]
        try:
            outputs = loaded.serve_bytes(tf.constant(encoded, tf.string))
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(
                f"Cannot decode an image: {error.message.splitlines()[0]}"
            ) from None
    outputs = {key: value.numpy() for key, value in outputs.items()}
    k = outputs["top_class_ids"].shape[1]
    if top is None:
        top = k
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= k:
        raise ValueError(
            f"`top` must be an integer from 1 to {k} (the classes the "
            f"SavedModel ranks). Received: top={top!r}"
        )
    return [
        {
            "classes": [name.decode() for name in names[:top]],
            "class_ids": [int(i) for i in ids[:top]],
            "probabilities": [float(p) for p in probabilities[:top]],
            "all_probabilities": everything,
        }
        for names, ids, probabilities, everything in zip(
            outputs["top_class_names"],
            outputs["top_class_ids"],
            outputs["top_probabilities"],
            outputs["probabilities"],
        )
    ]


def _read(image):
    if isinstance(image, bytes):
        return image
    if isinstance(image, (str, os.PathLike)):
        path = pathlib.Path(image).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{str(image)!r} is not an existing file.")
        return path.read_bytes()
    raise TypeError(
        "Images must be file paths, encoded bytes or an array. "
        f"Received: {type(image).__name__}"
    )
