"""The papers' training recipes as plain data.

A `Recipe` is a frozen record of every number a run needs (optimizer,
schedule, augmentation, evaluation crop, precision): it prints as a table
(`describe()`), saves as JSON (`to_dict()` / `from_dict()`) and is
changed only by making a new one (`apply_overrides`, `dataclasses.replace`).
Importing this module imports neither Keras nor TensorFlow.

Example:

>>> from keras_eca.training import get_recipe, apply_overrides
>>> recipe = get_recipe("eca_resnet")
>>> recipe.epochs, recipe.batch_size, recipe.learning_rate
(100, 256, 0.1)
>>> apply_overrides(recipe, ["epochs=5", "crop_scale=0.35,1"]).crop_scale
(0.35, 1.0)
"""

import dataclasses
import math
import textwrap
import types
import typing
from typing import Literal

# Keys of the architecture families in `keras_eca.applications` rows.
_RESNET_FAMILY = "resnet"
_MOBILENET_FAMILY = "mobilenet_v2"

_WEIGHT_DECAY_HELP = (
    "L2 on every weight (BN gamma/beta, biases too); see weight_decay_mode."
)


def recipe_field(default=dataclasses.MISSING, help=""):
    """A recipe dataclass field with the `help` its table shows."""
    return dataclasses.field(default=default, metadata={"help": help})


_field = recipe_field


class RecipeData:
    """The behaviour every recipe record shares: typed fields checked on
    construction (`_check_ranges` adds a subclass's range checks), JSON
    (`to_dict` / `from_dict`), a readable table (`describe`) and
    `apply_overrides`. Subclasses are frozen, keyword-only dataclasses
    whose fields carry a `help` string (`_field(default, help)`).
    """

    def __post_init__(self):
        hints = _field_types(type(self))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):  # from JSON
                value = tuple(value)
                object.__setattr__(self, field.name, value)
            checked = _check_type(field.name, value, hints[field.name])
            object.__setattr__(self, field.name, checked)
        self._check_ranges()

    def to_dict(self):
        """The fields as a JSON-able dict (tuples become lists)."""
        return {
            field.name: _jsonable(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data):
        """A recipe from `to_dict()` output (or its JSON); all fields needed.

        Unknown or missing keys are a `ValueError` naming them.
        """
        if not isinstance(data, dict):
            raise TypeError(
                f"Recipe.from_dict expects a dict. Received: {type(data)!r}"
            )
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(
                f"Unknown recipe keys {unknown}. Valid keys: {sorted(names)}"
            )
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"Recipe dict misses the keys {missing}")
        return cls(**data)

    def describe(self):
        """The recipe as a readable three-column table (key, value, meaning)."""
        rows = [
            (field.name, _show(getattr(self, field.name)),
             field.metadata.get("help", ""))
            for field in dataclasses.fields(self)
        ]
        text_keys = ("name", "description", "source")
        key_width = max(len(key) for key, _, _ in rows)
        value_width = max(
            len(value) for key, value, _ in rows if key not in text_keys
        )
        indent = " " * (2 + key_width + 2 + value_width + 2)
        lines = [f"Recipe {self.name!r}"]
        for key, value, help in rows:
            if key in text_keys:
                lines.append(f"  {key:<{key_width}}  {value}")
                continue
            head = f"  {key:<{key_width}}  {value:<{value_width}}  "
            wrapped = textwrap.wrap(help, width=max(100 - len(indent), 30))
            lines.append(head + (wrapped[0] if wrapped else ""))
            lines.extend(indent + line for line in wrapped[1:])
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self):
        return self.describe()

    def _check_ranges(self):
        pass

    def scaled_learning_rate(self, global_batch_size):
        """The peak learning rate for `global_batch_size` images a step
        (the `learning_rate`, `lr_reference_batch` and `lr_scaling`
        fields)."""
        if isinstance(global_batch_size, bool) or not isinstance(
            global_batch_size, int
        ) or global_batch_size <= 0:
            raise ValueError(
                "global_batch_size must be a positive integer. Received: "
                f"global_batch_size={global_batch_size!r}"
            )
        if self.lr_scaling == "none":
            return self.learning_rate
        return self.learning_rate * global_batch_size / self.lr_reference_batch


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recipe(RecipeData):
    """Every number of one training recipe; plain data.

    Fields that count in steps or epochs count optimizer steps of the
    global batch (`batch_size` images across all replicas and workers).
    The learning rate actually used is `scaled_learning_rate(batch)`:
    `learning_rate * batch / lr_reference_batch` under the linear scaling
    rule (Goyal et al., 2017), `learning_rate` under `lr_scaling="none"`.

    Weight decay: the ECA-Net and SA-Net runs used PyTorch's
    `torch.optim.SGD(weight_decay=1e-4)` on `model.parameters()`, i.e. an L2
    term on every parameter (BatchNorm scale and offset and biases
    included) added to the gradient before the momentum buffer. Keras'
    `weight_decay` argument is decoupled (`w -= lr * wd * w` beside the
    update), which differs from it as soon as momentum is on, so the
    recipes use `weight_decay_mode="coupled"` with
    `keras_eca.training.SGD`, a PyTorch-semantics SGD.
    """

    name: str = _field(help="Recipe name.")
    description: str = _field(help="One line on what it reproduces.")
    source: str = _field(help="Where the numbers come from.")
    epochs: int = _field(help="Training epochs.")
    batch_size: int = _field(help="Global batch size (all replicas).")
    learning_rate: float = _field(
        help="Peak learning rate at lr_reference_batch images per step."
    )
    lr_reference_batch: int = _field(
        help="The batch size learning_rate is quoted for."
    )
    lr_scaling: Literal["linear", "none"] = _field(
        "linear",
        "linear: lr x batch / lr_reference_batch (Goyal et al. 2017); "
        "none: fixed.",
    )
    momentum: float = _field(0.9, "SGD momentum (PyTorch semantics).")
    nesterov: bool = _field(False, "Nesterov momentum, as PyTorch's.")
    weight_decay: float = _field(help=_WEIGHT_DECAY_HELP)
    weight_decay_mode: Literal["coupled", "decoupled"] = _field(
        "coupled",
        "coupled: grad += wd * w before momentum (torch SGD, the papers); "
        "decoupled: Keras' w -= lr * wd * w.",
    )
    schedule: Literal["step", "exponential", "cosine", "constant"] = _field(
        help="step (x decay_factor every decay_every_epochs), exponential "
        "(x decay_factor per epoch), cosine or constant."
    )
    decay_every_epochs: int = _field(30, "Epochs between step decays.")
    decay_factor: float = _field(
        0.1, "Factor of each step decay, or per epoch for exponential."
    )
    cosine_final_fraction: float = _field(
        0.0, "cosine: the last step's lr as a fraction of the peak."
    )
    warmup_epochs: float = _field(
        0.0, "Linear warmup from ~0 to the schedule's lr (0: off)."
    )
    label_smoothing: float = _field(0.0, "Label smoothing (0: off).")
    ema_decay: float | None = _field(
        None,
        "EMA of the weights (Keras' use_ema), copied in when fit ends; "
        "none: off.",
    )
    image_size: int = _field(224, "Training crop size in pixels.")
    crop_scale: tuple[float, float] = _field(
        (0.08, 1.0), "RandomResizedCrop area range, as a fraction."
    )
    crop_ratio: tuple[float, float] = _field(
        (3 / 4, 4 / 3), "RandomResizedCrop aspect-ratio range."
    )
    flip: bool = _field(True, "Random horizontal flip.")
    eval_crop_pct: float = _field(
        0.875, "Evaluation: resize to image_size / crop_pct, centre crop."
    )
    eval_interpolation: str = _field(
        "bilinear", "Evaluation resize interpolation."
    )
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
        positive = ("epochs", "batch_size", "lr_reference_batch",
                    "decay_every_epochs", "image_size")
        for key in positive:
            if getattr(self, key) <= 0:
                _bad(key, getattr(self, key), "a positive integer")
        if self.steps_per_epoch is not None and self.steps_per_epoch <= 0:
            _bad("steps_per_epoch", self.steps_per_epoch,
                 "a positive integer or None")
        if self.backup_every < 0:
            _bad("backup_every", self.backup_every, "an integer >= 0")
        if not self.learning_rate > 0:
            _bad("learning_rate", self.learning_rate, "a number > 0")
        for key, low, high in (
            ("momentum", 0.0, 1.0),
            ("label_smoothing", 0.0, 1.0),
        ):
            if not low <= getattr(self, key) < high:
                _bad(key, getattr(self, key), f"in [{low}, {high})")
        if self.weight_decay < 0:
            _bad("weight_decay", self.weight_decay, "a number >= 0")
        if not 0 < self.decay_factor <= 1:
            _bad("decay_factor", self.decay_factor, "in (0, 1]")
        if not 0 <= self.cosine_final_fraction <= 1:
            _bad("cosine_final_fraction", self.cosine_final_fraction,
                 "in [0, 1]")
        if self.warmup_epochs < 0:
            _bad("warmup_epochs", self.warmup_epochs, "a number >= 0")
        if self.warmup_epochs >= self.epochs:
            _bad("warmup_epochs", self.warmup_epochs,
                 f"fewer than epochs={self.epochs}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            _bad("ema_decay", self.ema_decay, "in (0, 1) or None")
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            _bad("crop_scale", self.crop_scale, "0 < low <= high <= 1")
        low, high = self.crop_ratio
        if not 0 < low <= high:
            _bad("crop_ratio", self.crop_ratio, "0 < low <= high")
        if not 0 < self.eval_crop_pct <= 1:
            _bad("eval_crop_pct", self.eval_crop_pct, "in (0, 1]")
        if self.nesterov and self.momentum == 0:
            _bad("nesterov", self.nesterov, "used with a momentum > 0")




def _bad(key, value, expected):
    raise ValueError(f"Recipe field {key} must be {expected}. Received: "
                     f"{key}={value!r}")


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _show(value):
    if value == ():
        return "()"
    if isinstance(value, tuple):
        return ", ".join(_show(v) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return "none" if value is None else str(value)


def _field_types(cls):
    return typing.get_type_hints(cls)


def _alternatives(annotation):
    """The members of a union (`int | None`) or the annotation itself."""
    if isinstance(annotation, types.UnionType) or (
        typing.get_origin(annotation) is typing.Union
    ):
        return typing.get_args(annotation)
    return (annotation,)


def _check_type(key, value, annotation):
    """`value` if it fits `annotation` (ints widen to floats), else error."""
    for option in _alternatives(annotation):
        fitted = _fit(value, option)
        if fitted is not _NO_FIT:
            return fitted
    raise TypeError(
        f"Recipe field {key} must be {_type_name(annotation)}. Received: "
        f"{key}={value!r}"
    )


_NO_FIT = object()


def _fit(value, option):
    if option is type(None):
        return None if value is None else _NO_FIT
    if typing.get_origin(option) is Literal:
        choices = typing.get_args(option)
        return value if any(
            value == c and type(value) is type(c) for c in choices
        ) else _NO_FIT
    if typing.get_origin(option) is tuple:
        items = _tuple_items(option, value)
        if not isinstance(value, tuple) or len(value) != len(items):
            return _NO_FIT
        fitted = tuple(_fit(v, t) for v, t in zip(value, items))
        return _NO_FIT if _NO_FIT in fitted else fitted
    if option is bool:
        return value if isinstance(value, bool) else _NO_FIT
    if option is int:
        return value if _is_int(value) else _NO_FIT
    if option is float:
        if _is_int(value) or isinstance(value, float):
            value = float(value)
            return value if math.isfinite(value) else _NO_FIT
        return _NO_FIT
    if option is str:
        return value if isinstance(value, str) else _NO_FIT
    raise AssertionError(f"unhandled field type {option!r}")


def _tuple_items(option, value):
    """The item types of `tuple[a, b]`, or of `tuple[a, ...]` for `value`'s
    length."""
    items = typing.get_args(option)
    if len(items) == 2 and items[1] is Ellipsis:
        return (items[0],) * (len(value) if isinstance(value, (tuple, list)) else 0)
    return items


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _type_name(annotation):
    names = []
    for option in _alternatives(annotation):
        if option is type(None):
            names.append("none")
        elif typing.get_origin(option) is Literal:
            names.append(" | ".join(repr(c) for c in typing.get_args(option)))
        elif typing.get_origin(option) is tuple:
            items = ", ".join(
                "..." if t is Ellipsis else t.__name__ for t in typing.get_args(option)
            )
            names.append(f"a tuple ({items})")
        else:
            names.append(option.__name__)
    return " | ".join(names)


# --- overrides -------------------------------------------------------------

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _parse(text, option):
    """`text` parsed as `option`, or `_NO_FIT`."""
    lowered = text.strip().lower()
    if option is type(None):
        return None if lowered in ("none", "null") else _NO_FIT
    if typing.get_origin(option) is Literal:
        choices = typing.get_args(option)
        return next((c for c in choices if str(c) == text.strip()), _NO_FIT)
    if typing.get_origin(option) is tuple:
        inside = text.strip().strip("()[]").strip()
        parts = inside.split(",") if inside else []
        items = _tuple_items(option, parts)
        if len(parts) != len(items):
            return _NO_FIT
        parsed = tuple(_parse(p, t) for p, t in zip(parts, items))
        return _NO_FIT if _NO_FIT in parsed else parsed
    if option is bool:
        if lowered in _TRUE:
            return True
        return False if lowered in _FALSE else _NO_FIT
    if option is int:
        try:
            return int(lowered.replace("_", ""))
        except ValueError:
            return _NO_FIT
    if option is float:
        try:
            value = float(lowered.replace("_", ""))
        except ValueError:
            return _NO_FIT
        return value if math.isfinite(value) else _NO_FIT
    if option is str:
        return text
    raise AssertionError(f"unhandled field type {option!r}")


def apply_overrides(recipe, overrides):
    """A copy of `recipe` with `"key=value"` overrides applied in order.

    Values are parsed by the field's type: ints, floats, booleans
    (`true/false`, `yes/no`, `1/0`), strings, the field's listed choices,
    pairs as `"0.08,1"` and `none` for optional fields.

    Args:
        recipe: a `Recipe` (or another `RecipeData`, e.g. a detection
            recipe).
        overrides: iterable of `"key=value"` strings (e.g. `--set` flags).

    Returns:
        A new, validated recipe of the same class.

    Raises:
        ValueError: an item without `=`, an unknown key (the message lists
            the valid ones) or a value that does not parse or is out of
            range (the message names key and value).
    """
    if not isinstance(recipe, RecipeData):
        raise TypeError(
            f"apply_overrides expects a recipe. Received: {type(recipe)!r}"
        )
    if isinstance(overrides, str):
        raise TypeError(
            "overrides must be a list of 'key=value' strings, not one "
            f"string. Received: overrides={overrides!r}"
        )
    hints = _field_types(type(recipe))
    changes = {}
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(
                f"An override must read 'key=value'. Received: {item!r}"
            )
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in hints:
            raise ValueError(
                f"Unknown recipe key {key!r} in override {item!r}. Valid "
                f"keys: {', '.join(sorted(hints))}"
            )
        parsed = _NO_FIT
        for option in _alternatives(hints[key]):
            parsed = _parse(text, option)
            if parsed is not _NO_FIT:
                break
        if parsed is _NO_FIT:
            raise ValueError(
                f"Recipe override {key}={text!r}: expected "
                f"{_type_name(hints[key])}"
            )
        changes[key] = parsed
    try:
        return dataclasses.replace(recipe, **changes)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Recipe override rejected: {error}") from None


# --- the registry ----------------------------------------------------------

_ECA_SOURCE = (
    "ECA-Net (Wang et al., CVPR 2020) section 4.1 and BangguWu/ECANet "
    "main.py defaults"
)
_SA_SOURCE = "SA-Net (Yang et al., ICASSP 2021): wofmanaf/SA-Net main.py defaults"
_MOBILENET_SOURCE = (
    "ECA-Net section 4.1 and BangguWu/ECANet light_main.py "
    "(lr = 0.045 * 0.98 ** epoch)"
)

RECIPES = {
    "eca_resnet": Recipe(
        name="eca_resnet",
        description="ECA-Net's ImageNet recipe for ResNets (and SE/plain).",
        source=_ECA_SOURCE,
        epochs=100,
        batch_size=256,
        learning_rate=0.1,
        lr_reference_batch=256,
        momentum=0.9,
        weight_decay=1e-4,
        schedule="step",
        decay_every_epochs=30,
        decay_factor=0.1,
    ),
    "sa_resnet": Recipe(
        name="sa_resnet",
        description="SA-Net's ImageNet recipe for SA-ResNets.",
        source=_SA_SOURCE,
        epochs=90,
        batch_size=256,
        learning_rate=0.1,
        lr_reference_batch=256,
        momentum=0.9,
        weight_decay=1e-4,
        schedule="step",
        decay_every_epochs=30,
        decay_factor=0.1,
    ),
    "mobilenet_v2": Recipe(
        name="mobilenet_v2",
        description="ECA-Net's ImageNet recipe for (ECA-)MobileNetV2.",
        source=_MOBILENET_SOURCE,
        epochs=400,
        batch_size=96,
        learning_rate=0.045,
        lr_reference_batch=96,
        momentum=0.9,
        weight_decay=4e-5,
        schedule="exponential",
        decay_factor=0.98,
    ),
    "smoke": Recipe(
        name="smoke",
        description="A tiny CPU run that checks the pipeline end to end.",
        source="keras_eca (not from a paper)",
        epochs=2,
        batch_size=8,
        learning_rate=0.01,
        lr_reference_batch=8,
        momentum=0.9,
        weight_decay=1e-4,
        schedule="constant",
        image_size=32,
        crop_scale=(0.35, 1.0),
        backup_every=5,
    ),
}


def list_recipes():
    """The names of the registered recipes, sorted."""
    return sorted(RECIPES)


def get_recipe(name):
    """The registered `Recipe` called `name`.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if not isinstance(name, str) or name not in RECIPES:
        raise ValueError(
            f"Unknown recipe {name!r}. Valid recipes: "
            f"{', '.join(list_recipes())}"
        )
    return RECIPES[name]


def default_recipe_for(architecture):
    """The recipe name the papers trained `architecture` with.

    ResNet-family models (ECA, SE, plain and the timm variants) get
    `"eca_resnet"`, SA-ResNets `"sa_resnet"`, the MobileNetV2 family
    `"mobilenet_v2"`.

    Args:
        architecture: a `keras_eca.applications.list_models()` name.
    """
    from keras_eca.applications import list_models
    from keras_eca.applications import model_config

    names = list_models()
    if not isinstance(architecture, str) or architecture not in names:
        raise ValueError(
            f"Unknown architecture {architecture!r}. Valid architectures: "
            f"{', '.join(sorted(names))}"
        )
    row = model_config(architecture)
    if row["family"] == _MOBILENET_FAMILY:
        return "mobilenet_v2"
    if row["family"] == _RESNET_FAMILY:
        return "sa_resnet" if row.get("attention") == "sa" else "eca_resnet"
    raise ValueError(
        f"No default recipe for the {row['family']!r} family of "
        f"{architecture!r}; pass a recipe name."
    )
