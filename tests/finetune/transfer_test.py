"""Transfer learning done right: phase 1 trains the classifier on the
frozen backbone, phase 2 the top stages with every BatchNorm layer in
inference mode -- its statistics bit-identical to the loaded weights."""

import io

import numpy as np
import pytest

import keras
from keras_eca import applications
from keras_eca import finetune
from keras_eca.finetune import model as model_lib
from keras_eca.layers import FoldedBatchNormalization
from tests.finetune import helpers

pytestmark = pytest.mark.tensorflow_only


def pretrained_file(path):
    """Stand-in released weights: random, BatchNorm statistics included
    (so that an update would show), saved as `keras-eca convert` does."""
    keras.utils.set_random_seed(7)
    source = applications.build_model(
        "eca_resnet18", weights=None, input_shape=(32, 32, 3)
    )
    rng = np.random.default_rng(0)
    for layer in source.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.5, shape).astype("float32"))
            layer.moving_variance.assign(
                rng.uniform(0.5, 2.0, shape).astype("float32")
            )
    source.save_weights(path)
    return source


class Snapshots(keras.callbacks.Callback):
    """The backbone's weights at the start and end of every phase's fit."""

    def __init__(self):
        super().__init__()
        self.begin, self.end = [], []

    def _take(self):
        backbone = self.model.get_layer("backbone")
        return {w.path: keras.ops.convert_to_numpy(w).copy() for w in backbone.weights}

    def on_train_begin(self, logs=None):
        self.begin.append(self._take())

    def on_train_end(self, logs=None):
        self.end.append(self._take())


def is_bn_statistic(path):
    return path.endswith(("moving_mean", "moving_variance"))


def test_phase_two_keeps_batchnorm_statistics(tmp_path):
    source = pretrained_file(tmp_path / "released.weights.h5")
    snapshots = Snapshots()
    images, labels = helpers.digits(120)
    log = io.StringIO()
    result = finetune.finetune(
        (images, labels),
        model="eca_resnet18",
        weights=str(tmp_path / "released.weights.h5"),
        image_size=32,
        batch_size=16,
        epochs=2,
        unfreeze=1,
        output=tmp_path / "run",
        export=False,
        figures=False,
        callbacks=[snapshots],
        stream=log,
    )
    phases = result.report["phases"]
    assert [p["name"] for p in phases] == ["head", "backbone"]
    assert result.report["weights"]["pretrained"] is True
    assert phases[1]["learning_rate"] < phases[0]["learning_rate"]
    assert phases[1]["unfrozen_stages"] == 1
    assert "Phase 2/2: the backbone and the classifier, BatchNorm frozen" in log.getvalue()

    backbone = result.model.get_layer("backbone")
    folded = [l for l in backbone.layers if isinstance(l, FoldedBatchNormalization)]
    assert folded  # the ECA blocks' BatchNorm is the folded kind
    # Loaded as released, then untouched by both phases.
    assert len(snapshots.begin) == 2
    for layer in model_lib.batch_norm_layers(backbone):
        released = source.get_layer(layer.name)
        for name in ("moving_mean", "moving_variance", "gamma", "beta"):
            expected = keras.ops.convert_to_numpy(getattr(released, name))
            for state in (snapshots.begin[1], snapshots.end[1], snapshots.end[0]):
                np.testing.assert_array_equal(
                    state[getattr(layer, name).path], expected,
                    err_msg=f"{layer.name}.{name}",
                )
    before, after = snapshots.begin[1], snapshots.end[1]
    changed = {
        path for path in before
        if not np.array_equal(before[path], after[path])
    }
    assert changed and not [p for p in changed if is_bn_statistic(p)]
    # unfreeze=1: only the last stage (conv5, with its ECA gates) trained.
    assert all("conv5_" in path for path in changed), sorted(changed)[:5]
    assert any("conv5_block2_2_conv" in path for path in changed)
    assert any("conv5_block2_attn" in path for path in changed)
    # Phase 1 trained the classifier alone.
    assert all(
        np.array_equal(snapshots.begin[0][p], snapshots.end[0][p])
        for p in snapshots.begin[0]
    )


def test_what_each_phase_trains():
    net, _ = model_lib.build_finetune_model(
        "eca_resnet18", weights=None, image_size=32, num_classes=3, dropout=0.1
    )
    backbone = net.get_layer("backbone")
    convs = [l for l in backbone.layers if isinstance(l, keras.layers.Conv2D)]
    norms = model_lib.batch_norm_layers(backbone)
    head = net.get_layer("predictions")

    model_lib.set_phase(net, "head")
    assert not backbone.trainable_weights and head.trainable
    model_lib.set_phase(net, "backbone", "all")
    assert all(conv.trainable for conv in convs)
    assert norms and not any(norm.trainable for norm in norms)
    assert not [w for w in net.trainable_weights if "moving" in w.path]
    model_lib.set_phase(net, "backbone", 2)
    trained = {l.name for l in convs if l.trainable}
    assert trained == {l.name for l in convs if l.name.startswith(("conv4_", "conv5_"))}
    model_lib.set_phase(net, "scratch")
    assert all(layer.trainable for layer in convs + norms)
    assert {w.path for w in net.trainable_weights} == {
        w.path for w in net.weights
        if not w.path.endswith(("moving_mean", "moving_variance"))
        and "/preprocessing/" not in w.path
        and "seed_generator" not in w.path
    }


@pytest.mark.parametrize("architecture", ["eca_resnet18", "eca_mobilenet_v2"])
def test_stages_cover_the_backbone_in_order(architecture):
    backbone = applications.build_model(
        architecture, include_top=False, weights=None, input_shape=(32, 32, 3),
        pooling="avg", include_preprocessing=True, name="backbone",
    )
    stages = model_lib.backbone_stages(backbone)
    assert len(stages) == 4
    assert [l for group in stages for l in group] == list(backbone.layers)
    assert stages[0][0].name.startswith("input") and stages[-1][-1].name == "avg_pool"
    if architecture == "eca_resnet18":
        assert {l.name[:5] for l in stages[3] if l.name.startswith("conv")} == {"conv5"}
        assert any(l.name == "conv1_conv" for l in stages[0])


def test_unfreeze_is_checked():
    for bad in (5, -1, "some", True, 1.5):
        with pytest.raises(ValueError, match="unfreeze="):
            model_lib.check_unfreeze(bad)
    assert model_lib.check_unfreeze("3") == 3


def test_imagenet_without_released_weights_trains_from_scratch():
    messages = []
    net, info = model_lib.build_finetune_model(
        "se_resnet18", weights="imagenet", image_size=32, num_classes=2,
        dropout=0.0, say=messages.append,
    )
    assert info["pretrained"] is False and info["loaded"] is None
    assert messages == [
        "No ImageNet weights exist for 'se_resnet18': training from random "
        "initialisation."
    ]
    assert net.output_shape == (None, 2)


def test_the_phase_plan():
    from keras_eca.finetune import run as run_lib

    def plan(*args):
        return [(p["phase"], p["epochs"], p["learning_rate"]) for p in run_lib._plan(*args)]

    # pretrained, epochs, head_epochs, unfreeze, learning_rate, backbone_rate
    assert plan(False, 3, None, "all", None, None) == [("scratch", 3, 2e-3)]
    assert plan(True, 10, None, "all", None, None) == [
        ("head", 3, 1e-3), ("backbone", 7, 1e-4)
    ]
    assert plan(True, 1, None, "all", None, None) == [("head", 1, 1e-3)]
    assert plan(True, 4, 1, 2, 5e-3, 5e-5) == [("head", 1, 5e-3), ("backbone", 3, 5e-5)]
    assert plan(True, 4, None, 0, None, None) == [("head", 4, 1e-3)]
    with pytest.raises(ValueError, match="head_epochs=5, epochs=4"):
        run_lib._plan(True, 4, 5, "all", None, None)
