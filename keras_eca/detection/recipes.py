"""Detection training recipes as plain data (`keras-eca detect-train`).

A `DetectionRecipe` shares the classification recipes' behaviour (typed
fields, `describe()`, JSON, `--set key=value` overrides) and holds what a
detector's run needs: optimizer, step schedule with warmup, gradient
clipping, the input size and augmentation, precision.

Example:

>>> from keras_eca.detection.recipes import get_detection_recipe
>>> recipe = get_detection_recipe("coco_1x")
>>> recipe.epochs, recipe.batch_size, recipe.learning_rate, recipe.decay_epochs
(12, 8, 0.01, (8, 11))
"""

import dataclasses
from typing import Literal

from keras_eca.training.recipes import RecipeData
from keras_eca.training.recipes import recipe_field as _field


@dataclasses.dataclass(frozen=True, kw_only=True)
class DetectionRecipe(RecipeData):
    """Every number of one detector training run; plain data.

    Steps count optimizer steps of the global batch (`batch_size` images
    over all replicas). The learning rate used is
    `scaled_learning_rate(batch)` (linear scaling from
    `lr_reference_batch`), multiplied by `decay_factor` at the start of
    each epoch of `decay_epochs`, after a linear warmup of `warmup_steps`.
    """

    name: str = _field(help="Recipe name.")
    description: str = _field(help="One line on what it reproduces.")
    source: str = _field(help="Where the numbers come from.")
    epochs: int = _field(help="Training epochs.")
    batch_size: int = _field(help="Global batch size (all replicas).")
    optimizer: Literal["sgd", "adam"] = _field(
        help="sgd: momentum SGD with coupled weight decay (torch, "
        "MMDetection); adam: Keras' Adam."
    )
    learning_rate: float = _field(
        help="Peak learning rate at lr_reference_batch images per step."
    )
    lr_reference_batch: int = _field(
        help="The batch size learning_rate is quoted for."
    )
    lr_scaling: Literal["linear", "none"] = _field(
        "linear", "linear: lr x batch / lr_reference_batch; none: fixed."
    )
    momentum: float = _field(0.9, "SGD momentum (PyTorch semantics).")
    weight_decay: float = _field(
        0.0, "sgd: L2 added to every gradient before the momentum (torch)."
    )
    decay_epochs: tuple[int, ...] = _field(
        (), "Epochs (0-based) at whose start the lr is multiplied by "
        "decay_factor."
    )
    decay_factor: float = _field(0.1, "Factor of each step decay.")
    warmup_steps: int = _field(
        0, "Linear warmup from ~0 to the schedule's lr over these steps."
    )
    global_clipnorm: float | None = _field(
        None, "Clip the gradients' global norm to this (none: off)."
    )
    image_size: int = _field(
        512, "Square input side in pixels (a multiple of 128): the longer "
        "side is resized to it, the rest padded."
    )
    scale_range: tuple[float, float] = _field(
        (1.0, 1.0), "Jittered resize factor range (1, 1: off)."
    )
    flip: bool = _field(True, "Random horizontal flip.")
    max_boxes: int = _field(100, "Objects kept per training image.")
    mixed_precision: Literal[
        "auto", "float32", "mixed_float16", "mixed_bfloat16"
    ] = _field(
        "auto",
        "auto: mixed_float16 on GPU, mixed_bfloat16 on TPU, float32 on CPU.",
    )
    jit_compile: Literal["auto"] | bool = _field(
        "auto", "XLA; auto: on with accelerators, off on CPU."
    )
    steps_per_epoch: int | None = _field(
        None, "Steps per epoch; none: the dataset's size // batch_size."
    )
    backup_every: int = _field(
        1000, "Steps between resumable backups (0: at epoch ends only)."
    )
    seed: int = _field(0, "Seed of initialisation, shuffling, augmentation.")

    def _check_ranges(self):
        for key in ("epochs", "batch_size", "lr_reference_batch", "max_boxes"):
            if getattr(self, key) <= 0:
                _bad(key, getattr(self, key), "a positive integer")
        if self.image_size <= 0 or self.image_size % 128:
            _bad("image_size", self.image_size, "a positive multiple of 128")
        if not self.learning_rate > 0:
            _bad("learning_rate", self.learning_rate, "a number > 0")
        if not 0 <= self.momentum < 1:
            _bad("momentum", self.momentum, "in [0, 1)")
        if self.weight_decay < 0:
            _bad("weight_decay", self.weight_decay, "a number >= 0")
        if list(self.decay_epochs) != sorted(set(self.decay_epochs)) or any(
            not 0 < epoch < self.epochs for epoch in self.decay_epochs
        ):
            _bad("decay_epochs", self.decay_epochs,
                 f"increasing epochs in (0, epochs={self.epochs})")
        if not 0 < self.decay_factor <= 1:
            _bad("decay_factor", self.decay_factor, "in (0, 1]")
        if self.warmup_steps < 0:
            _bad("warmup_steps", self.warmup_steps, "an integer >= 0")
        if self.global_clipnorm is not None and not self.global_clipnorm > 0:
            _bad("global_clipnorm", self.global_clipnorm, "a number > 0 or none")
        low, high = self.scale_range
        if not 0 < low <= high:
            _bad("scale_range", self.scale_range, "0 < low <= high")
        if self.steps_per_epoch is not None and self.steps_per_epoch <= 0:
            _bad("steps_per_epoch", self.steps_per_epoch,
                 "a positive integer or None")
        if self.backup_every < 0:
            _bad("backup_every", self.backup_every, "an integer >= 0")


def _bad(key, value, expected):
    raise ValueError(
        f"Detection recipe field {key} must be {expected}. Received: "
        f"{key}={value!r}"
    )


_MMDETECTION_SOURCE = (
    "ECA-Net (Wang et al., CVPR 2020) section 4.2: MMDetection 1x, SGD "
    "lr 0.01 at batch 8, wd 1e-4, x0.1 at epochs 8 and 11; MMDetection's "
    "500-step warmup and RetinaNet's grad clip 35"
)

DETECTION_RECIPES = {
    "coco_1x": DetectionRecipe(
        name="coco_1x",
        description="The ECA paper's COCO detection schedule (MMDetection 1x).",
        source=_MMDETECTION_SOURCE,
        epochs=12,
        batch_size=8,
        optimizer="sgd",
        learning_rate=0.01,
        lr_reference_batch=8,
        momentum=0.9,
        weight_decay=1e-4,
        decay_epochs=(8, 11),
        decay_factor=0.1,
        warmup_steps=500,
        global_clipnorm=35.0,
        # The paper resizes the shorter side to 800 (longer <= 1333); a
        # fixed square keeps one anchor set and one compiled graph.
        image_size=640,
        scale_range=(1.0, 1.0),
    ),
    "synthetic": DetectionRecipe(
        name="synthetic",
        description="The embedded shapes from scratch on a CPU "
        "(AP50 > 0.5 after ~750 steps).",
        source="keras_eca benchmark (python -m keras_eca.benchmark.detection "
        "ap-vs-steps)",
        epochs=4,
        batch_size=8,
        optimizer="adam",
        learning_rate=1e-3,
        lr_reference_batch=8,
        lr_scaling="none",
        global_clipnorm=10.0,
        image_size=128,
        scale_range=(0.75, 1.25),
        max_boxes=8,
        backup_every=100,
    ),
    "smoke": DetectionRecipe(
        name="smoke",
        description="A tiny CPU run that checks the pipeline end to end.",
        source="keras_eca (not from a paper)",
        epochs=2,
        batch_size=4,
        optimizer="adam",
        learning_rate=1e-3,
        lr_reference_batch=4,
        lr_scaling="none",
        global_clipnorm=10.0,
        image_size=128,
        scale_range=(0.75, 1.25),
        max_boxes=8,
        backup_every=2,
    ),
}


def list_detection_recipes():
    """The names of the detection recipes, sorted."""
    return sorted(DETECTION_RECIPES)


def get_detection_recipe(name):
    """The `DetectionRecipe` called `name`; a `ValueError` lists the valid
    names for any other."""
    if not isinstance(name, str) or name not in DETECTION_RECIPES:
        raise ValueError(
            f"Unknown detection recipe {name!r}. Valid recipes: "
            f"{', '.join(list_detection_recipes())}"
        )
    return DETECTION_RECIPES[name]


def default_detection_recipe(dataset):
    """`"synthetic"` for the embedded set, else `"coco_1x"`."""
    return "synthetic" if dataset == "synthetic" else "coco_1x"
