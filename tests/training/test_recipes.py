"""The named recipes hold the papers' numbers; overrides are typed."""

import dataclasses
import json
import subprocess
import sys

import pytest

from keras_eca.training import RECIPES
from keras_eca.training import Recipe
from keras_eca.training import apply_overrides
from keras_eca.training import default_recipe_for
from keras_eca.training import get_recipe
from keras_eca.training import list_recipes

# Shared by the ResNet recipes: BangguWu/ECANet and wofmanaf/SA-Net main.py
# (the torchvision ImageNet script) and ECA-Net section 4.1.
RESNET = {
    "batch_size": 256,
    "learning_rate": 0.1,
    "lr_reference_batch": 256,
    "lr_scaling": "linear",
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 1e-4,
    "weight_decay_mode": "coupled",
    "schedule": "step",
    "decay_every_epochs": 30,
    "decay_factor": 0.1,
    "image_size": 224,
    "crop_scale": (0.08, 1.0),
    "crop_ratio": (3 / 4, 4 / 3),
    "flip": True,
    "eval_crop_pct": 0.875,
    "eval_interpolation": "bilinear",
}
# Off unless asked for.
KNOBS_OFF = {
    "warmup_epochs": 0.0,
    "label_smoothing": 0.0,
    "ema_decay": None,
    "mixed_precision": "auto",
    "jit_compile": "auto",
}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("eca_resnet", {**RESNET, "epochs": 100}),
        ("sa_resnet", {**RESNET, "epochs": 90}),
        (
            "mobilenet_v2",
            {
                # light_main.py: lr = 0.045 * 0.98 ** epoch at batch 96.
                "epochs": 400,
                "batch_size": 96,
                "learning_rate": 0.045,
                "lr_reference_batch": 96,
                "lr_scaling": "linear",
                "momentum": 0.9,
                "weight_decay": 4e-5,
                "weight_decay_mode": "coupled",
                "schedule": "exponential",
                "decay_factor": 0.98,
                "image_size": 224,
                "crop_scale": (0.08, 1.0),
                "crop_ratio": (3 / 4, 4 / 3),
                "eval_crop_pct": 0.875,
            },
        ),
    ],
)
def test_named_recipes_hold_the_papers_numbers(name, expected):
    recipe = get_recipe(name)
    assert recipe.name == name
    assert {key: getattr(recipe, key) for key in expected} == expected
    assert {key: getattr(recipe, key) for key in KNOBS_OFF} == KNOBS_OFF


def test_eval_crop_is_resize_256_crop_224():
    recipe = get_recipe("eca_resnet")
    assert int(recipe.image_size / recipe.eval_crop_pct) == 256


def test_smoke_recipe_is_tiny():
    smoke = get_recipe("smoke")
    assert (smoke.epochs, smoke.batch_size, smoke.image_size) == (2, 8, 32)
    assert (smoke.learning_rate, smoke.schedule) == (0.01, "constant")


def test_the_lr_scaling_rule():
    assert get_recipe("eca_resnet").scaled_learning_rate(1024) == 0.4
    assert get_recipe("mobilenet_v2").scaled_learning_rate(48) == pytest.approx(0.0225)
    fixed = apply_overrides(get_recipe("eca_resnet"), ["lr_scaling=none"])
    assert fixed.scaled_learning_rate(1024) == 0.1
    with pytest.raises(ValueError, match="global_batch_size"):
        fixed.scaled_learning_rate(0)


def test_registry():
    assert list_recipes() == ["eca_resnet", "mobilenet_v2", "sa_resnet", "smoke"]
    assert set(RECIPES) == set(list_recipes())
    with pytest.raises(ValueError, match="'imagenet'.*eca_resnet, mobilenet_v2"):
        get_recipe("imagenet")


@pytest.mark.parametrize(
    "architecture, recipe",
    [
        ("eca_resnet50", "eca_resnet"),
        ("resnet18", "eca_resnet"),
        ("se_resnet101", "eca_resnet"),
        ("ecaresnet50d", "eca_resnet"),
        ("sa_resnet50", "sa_resnet"),
        ("sa_resnet152", "sa_resnet"),
        ("mobilenet_v2", "mobilenet_v2"),
        ("eca_mobilenet_v2", "mobilenet_v2"),
        ("se_mobilenet_v2", "mobilenet_v2"),
    ],
)
def test_default_recipe_for(architecture, recipe):
    assert default_recipe_for(architecture) == recipe


def test_default_recipe_for_an_unknown_architecture():
    with pytest.raises(ValueError, match="'vgg16'.*eca_resnet50"):
        default_recipe_for("vgg16")


def test_overrides_are_parsed_by_field_type():
    recipe = apply_overrides(
        get_recipe("eca_resnet"),
        [
            "epochs=5",
            "learning_rate=0.2",
            "weight_decay=0",
            "flip=false",
            "crop_scale=0.35,1",
            "crop_ratio=(0.5, 2)",
            "ema_decay=0.9999",
            "jit_compile=true",
            "mixed_precision=mixed_bfloat16",
            "steps_per_epoch=12",
            "description=a = b",  # only the first '=' splits
        ],
    )
    assert recipe.epochs == 5 and type(recipe.epochs) is int
    assert recipe.learning_rate == 0.2
    assert recipe.weight_decay == 0.0 and type(recipe.weight_decay) is float
    assert recipe.flip is False
    assert recipe.crop_scale == (0.35, 1.0)
    assert recipe.crop_ratio == (0.5, 2.0)
    assert recipe.ema_decay == 0.9999
    assert recipe.jit_compile is True
    assert recipe.mixed_precision == "mixed_bfloat16"
    assert recipe.steps_per_epoch == 12
    assert recipe.description == "a = b"
    back = apply_overrides(
        recipe, ["ema_decay=none", "jit_compile=auto", "steps_per_epoch=None"]
    )
    assert (back.ema_decay, back.jit_compile, back.steps_per_epoch) == (
        None, "auto", None
    )
    # The original is untouched (frozen records).
    assert get_recipe("eca_resnet").epochs == 100


def test_an_unknown_key_names_it_and_lists_the_valid_ones():
    with pytest.raises(ValueError) as error:
        apply_overrides(get_recipe("smoke"), ["epoch=3"])
    message = str(error.value)
    assert "'epoch'" in message
    valid = sorted(field.name for field in dataclasses.fields(Recipe))
    assert message.endswith("Valid keys: " + ", ".join(valid))


@pytest.mark.parametrize(
    "item, pattern",
    [
        ("epochs=ten", r"epochs='ten'.*int"),
        ("epochs=2.5", r"epochs='2.5'.*int"),
        ("flip=maybe", r"flip='maybe'.*bool"),
        ("crop_scale=0.5", r"crop_scale='0.5'.*tuple"),
        ("schedule=linear", r"schedule='linear'.*'step'"),
        ("ema_decay=fast", r"ema_decay='fast'.*float \| none"),
        ("learning_rate=nan", r"learning_rate='nan'"),
        ("epochs=0", r"epochs.*positive.*epochs=0"),
        ("momentum=1.0", r"momentum.*momentum=1.0"),
        ("crop_scale=0.9,0.1", r"crop_scale.*\(0.9, 0.1\)"),
        ("ema_decay=1", r"ema_decay.*ema_decay=1.0"),
        ("warmup_epochs=500", r"warmup_epochs.*epochs=2"),
        ("no_equals_sign", r"key=value.*'no_equals_sign'"),
    ],
)
def test_bad_override_values_name_key_and_value(item, pattern):
    with pytest.raises(ValueError, match=pattern):
        apply_overrides(get_recipe("smoke"), [item])


def test_overrides_must_be_a_list():
    with pytest.raises(TypeError, match="list"):
        apply_overrides(get_recipe("smoke"), "epochs=3")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_json_round_trip(name):
    recipe = apply_overrides(get_recipe(name), ["ema_decay=0.99"])
    text = json.dumps(recipe.to_dict())
    assert Recipe.from_dict(json.loads(text)) == recipe


def test_from_dict_checks_keys_and_types():
    data = get_recipe("smoke").to_dict()
    with pytest.raises(ValueError, match="'colour'"):
        Recipe.from_dict({**data, "colour": "red"})
    del data["seed"]
    with pytest.raises(ValueError, match="seed"):
        Recipe.from_dict(data)
    with pytest.raises(TypeError, match="epochs.*'2'"):
        Recipe.from_dict({**get_recipe("smoke").to_dict(), "epochs": "2"})
    with pytest.raises(TypeError, match="flip.*1"):
        Recipe.from_dict({**get_recipe("smoke").to_dict(), "flip": 1})


def test_describe_is_a_table_of_every_field():
    text = get_recipe("eca_resnet").describe()
    lines = text.splitlines()
    assert lines[0] == "Recipe 'eca_resnet'"
    for field in dataclasses.fields(Recipe):
        assert any(line.split()[:1] == [field.name] for line in lines[1:])
    assert any(line.split()[:3] == ["crop_scale", "0.08,", "1"] for line in lines)
    assert any(line.split()[:2] == ["weight_decay_mode", "coupled"] for line in lines)
    assert str(get_recipe("eca_resnet")) == text


def test_importing_recipes_imports_no_framework():
    code = (
        "import sys; import keras_eca.training as t; t.get_recipe('smoke'); "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
