"""The figures: what each draws, and the one a fine-tuning run writes."""

import os

import numpy as np
import pytest

import keras
import keras_eca
from keras_eca import visualization as viz
from keras_eca.visualization import figure as figure_lib
from tests.visualization import helpers


@pytest.fixture(scope="module")
def images_and_labels():
    return helpers.real_images(64)


@pytest.fixture(scope="module")
def eca_model():
    model = keras_eca.applications.build_model(
        "eca_resnet18", weights=None, input_shape=(64, 64, 3), classes=3
    )
    helpers.randomize(model, seed=4)
    return model


def _canvas_is_agg(figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return isinstance(figure.canvas, FigureCanvasAgg)


def _png_size(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_gates_by_class_and_the_channel_weight_figure(eca_model, images_and_labels):
    images, labels = images_and_labels
    gates = viz.attention_gates(eca_model, images)
    by_class = viz.gates_by_class(gates, labels, helpers.CLASS_NAMES)
    assert list(by_class) == list(helpers.CLASS_NAMES)
    for label, name in enumerate(helpers.CLASS_NAMES):
        np.testing.assert_allclose(
            by_class[name]["conv3_block1_attn"],
            gates["conv3_block1_attn"]["channel"][labels == label].mean(axis=0),
        )
    stages = viz.last_block_of_each_stage(gates)
    assert stages == [f"conv{s}_block2_attn" for s in range(2, 6)]
    figure = viz.plot_channel_weights(by_class, title="eca")
    assert _canvas_is_agg(figure)
    assert [ax.get_title() for ax in figure.axes] == stages
    for ax, key in zip(figure.axes, stages):
        assert [line.get_label() for line in ax.lines] == list(helpers.CLASS_NAMES)
        for line, name in zip(ax.lines, helpers.CLASS_NAMES):
            np.testing.assert_allclose(line.get_ydata(), by_class[name][key])
            np.testing.assert_array_equal(line.get_xdata(), np.arange(len(by_class[name][key])))
    chosen = viz.plot_channel_weights(by_class, layers=["conv2_block1_attn"])
    assert [ax.get_title() for ax in chosen.axes] == ["conv2_block1_attn"]
    # (N, C) gates are averaged inside.
    raw = {"all": {k: v["channel"] for k, v in gates.items()}}
    np.testing.assert_allclose(
        viz.plot_channel_weights(raw).axes[0].lines[0].get_ydata(),
        gates["conv2_block2_attn"]["channel"].mean(axis=0), rtol=1e-6,
    )


def test_gates_by_class_without_names_and_errors():
    gates = {"a": {"channel": np.array([[0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])}}
    by_class = viz.gates_by_class(gates, np.array([2, 0, 2]))
    assert list(by_class) == ["0", "2"]
    np.testing.assert_allclose(by_class["2"]["a"], [0.25, 0.75])
    with pytest.raises(ValueError, match=r"3 integer class ids.*shape \(2,\)"):
        viz.gates_by_class(gates, [0, 1])
    with pytest.raises(ValueError, match=r"values \[0, 5\] and class_names=\['x', 'y'\]"):
        viz.gates_by_class(gates, [0, 5, 0], ["x", "y"])
    with pytest.raises(ValueError, match="non-empty dict"):
        viz.gates_by_class({}, [0])
    with pytest.raises(ValueError, match=r"layers=\['nope'\]"):
        viz.plot_channel_weights({"x": {"a": np.ones(4)}}, layers=["nope"])
    with pytest.raises(ValueError, match="same layers"):
        viz.plot_channel_weights({"x": {"a": np.ones(4)}, "y": {"b": np.ones(4)}})


def test_spatial_gate_figure(images_and_labels):
    images = images_and_labels[0][:3]
    model = keras_eca.applications.build_model(
        "resnet18", weights=None, attention="sa", attention_kwargs={"groups": 8},
        input_shape=(64, 64, 3), classes=3,
    )
    helpers.randomize(model, seed=5)
    gates = viz.attention_gates(model, images)
    figure = viz.plot_spatial_gates(images, gates, max_images=2)
    assert _canvas_is_agg(figure)
    stages = [f"conv{s}_block2_attn" for s in range(2, 6)]
    assert len(figure.axes) == 2 * (1 + len(stages))
    row = figure.axes[1 : 1 + len(stages)]
    assert [ax.get_title().split("\n")[0] for ax in row] == stages
    # The overlay is the mean over the spatial-branch channels.
    shown = np.asarray(row[1].images[1].get_array())
    np.testing.assert_allclose(
        shown, gates["conv3_block2_attn"]["spatial"][0].mean(axis=-1), rtol=1e-6
    )
    assert shown.shape == (8, 8)
    with pytest.raises(ValueError, match="no spatial gates"):
        viz.plot_spatial_gates(images, {"a": {"channel": np.ones((3, 4))}})
    with pytest.raises(ValueError, match=r"the 3 images .*shape \(2, 64, 64, 3\)"):
        viz.plot_spatial_gates(images[:2], gates)


def test_grad_cam_figure_and_errors():
    images = np.random.default_rng(0).random((3, 16, 16, 3))
    heatmaps = np.random.default_rng(1).random((3, 4, 4))
    figure = viz.plot_grad_cam(images, heatmaps, titles=["a", "b", "c"], max_images=2)
    assert _canvas_is_agg(figure)
    assert [ax.get_title() for ax in figure.axes] == ["a", "b"]
    np.testing.assert_allclose(figure.axes[1].images[1].get_array(), heatmaps[1])
    with pytest.raises(ValueError, match=r"heatmaps of shape \(4, 4\)"):
        viz.plot_grad_cam(images, heatmaps[0])
    with pytest.raises(ValueError, match="one title per image"):
        viz.plot_grad_cam(images, heatmaps, titles=["a"])
    with pytest.raises(ValueError, match="Received: max_images=0"):
        viz.plot_grad_cam(images, heatmaps, max_images=0)


def test_write_attention_figure_channel_weights_nested(eca_model, images_and_labels, tmp_path):
    images, labels = images_and_labels
    backbone = keras_eca.applications.build_model(
        "eca_resnet18", weights=None, include_top=False,
        input_shape=(64, 64, 3), name="backbone",
    )
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.GlobalAveragePooling2D()(backbone(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    path = tmp_path / "run" / "attention.png"
    description = viz.write_attention_figure(model, images, labels, helpers.CLASS_NAMES, path)
    assert description.startswith(
        "Channel weights (mean gate per channel, 3 classes, 6 images) of 4 ECA blocks: "
        "backbone/conv2_block2_attn, "
    )
    width, height = _png_size(path)
    assert width > 600 and height > 600
    assert os.listdir(path.parent) == ["attention.png"]
    # Written again over the old file, still nothing else in the folder.
    viz.write_attention_figure(eca_model, images, labels, helpers.CLASS_NAMES, str(path))
    assert os.listdir(path.parent) == ["attention.png"]


def test_write_attention_figure_spatial_gates(images_and_labels, tmp_path):
    images, labels = images_and_labels
    model = keras_eca.applications.build_model(
        "resnet18", weights=None, attention="sa", attention_kwargs={"groups": 8},
        input_shape=(64, 64, 3), classes=3,
    )
    description = viz.write_attention_figure(
        model, images, labels, helpers.CLASS_NAMES, tmp_path / "sa.png", max_images=2
    )
    assert description.startswith("SA spatial gates (mean over the spatial-branch channels) of 4 blocks over 2 images")
    _png_size(tmp_path / "sa.png")


@pytest.mark.tensorflow_only
def test_write_attention_figure_grad_cam_without_attention(images_and_labels, tmp_path):
    images, labels = images_and_labels
    model = keras_eca.applications.build_model(
        "resnet18", weights=None, input_shape=(64, 64, 3), classes=3
    )
    description = viz.write_attention_figure(
        model, images, labels, helpers.CLASS_NAMES, tmp_path / "cam.png"
    )
    assert description == (
        "Grad-CAM of the true class at conv5_block2_out over 4 images "
        "(the model has no attention layer)"
    )
    _png_size(tmp_path / "cam.png")


def test_write_attention_figure_errors(eca_model, images_and_labels, tmp_path):
    images, labels = images_and_labels
    with pytest.raises(ValueError, match=r"\.png file. Received: path='.*fig.jpg'"):
        viz.write_attention_figure(eca_model, images, labels, helpers.CLASS_NAMES, tmp_path / "fig.jpg")
    with pytest.raises(ValueError, match=r"6 integer class ids"):
        viz.write_attention_figure(eca_model, images, labels[:2], helpers.CLASS_NAMES, tmp_path / "f.png")
    with pytest.raises(ValueError, match=r"class_names=\['a'\]"):
        viz.write_attention_figure(eca_model, images, labels, ["a"], tmp_path / "f.png")
    with pytest.raises(ValueError, match="rank 4"):
        viz.write_attention_figure(eca_model, images[0], labels, helpers.CLASS_NAMES, tmp_path / "f.png")
    assert not list(tmp_path.iterdir())


def test_a_failed_save_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "figure.png"
    target.write_bytes(b"old")

    class Broken:
        def savefig(self, file, **kwargs):
            file.write(b"half a png")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        figure_lib.save_figure_atomically(Broken(), target)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["figure.png"]
