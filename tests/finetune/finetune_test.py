"""One small fine-tuning run, end to end: the run folder, the report
against NumPy and scikit-learn, the SavedModel served by TensorFlow alone
(in a Python where neither keras_eca nor Keras is installed), `predict` and
`keras-eca predict`."""

import io
import json
import pathlib
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import tensorflow as tf
from sklearn import metrics as sk

import keras
import keras_eca
from keras_eca import cli
from keras_eca import data as data_lib
from keras_eca import finetune
from keras_eca.data import transforms
from keras_eca.finetune import data as finetune_data
from tests.finetune import helpers

pytestmark = pytest.mark.tensorflow_only

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COUNT = 200


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    images, labels = helpers.digits(COUNT)
    output = tmp_path_factory.mktemp("finetune") / "run"
    log = io.StringIO()
    result = finetune.finetune(
        (images, labels),
        model="eca_resnet18",
        weights=None,
        image_size=32,
        epochs=2,
        output=output,
        stream=log,
    )
    return result, log.getvalue()


def validation_arrays(crop_pct=0.875):
    """The validation split as the run prepared it (arrays get ImageNet's
    evaluation crop, the digits default the whole image)."""
    images, labels = helpers.digits(COUNT)
    source = data_lib.resolve_source(
        (images, labels), split="validation", validation_fraction=0.2, seed=0
    )
    batches = list(
        data_lib.evaluation_dataset(
            source, image_size=32, crop_pct=crop_pct, mean=(0, 0, 0),
            std=(1 / 255,) * 3, batch_size=64,
        ).as_numpy_iterator()
    )
    return (
        np.concatenate([b[0] for b in batches]),
        np.concatenate([b[1] for b in batches]),
    )


def test_the_run_folder(run):
    result, log = run
    folder = result.run_dir
    assert sorted(p.name for p in folder.iterdir()) == [
        "attention.png", "confusion_matrix.png", "curves.png", "labels.txt",
        "log.csv", "model.keras", "report.json", "saved_model",
    ]
    assert result.files == sorted(result.report["files"])
    assert (folder / "labels.txt").read_text() == "".join(
        f"{i}\n" for i in range(10)
    )
    for name in ("attention.png", "confusion_matrix.png", "curves.png"):
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC
    rows = (folder / "log.csv").read_text().splitlines()
    assert rows[0] == "epoch,phase,loss,accuracy,val_loss,val_accuracy"
    assert [row.split(",")[:2] for row in rows[1:]] == [
        ["1", "scratch"], ["2", "scratch"]
    ]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    # The console: the phase, progress with ETA, the accuracy, the files.
    assert "one phase trains every layer" in log
    assert "img/s  ETA" in log
    assert f"Validation accuracy: {result.accuracy:.2%}" in log
    assert f"wrote {folder}/: attention.png" in log


def test_the_report_against_numpy_and_scikit_learn(run):
    result, _ = run
    report = json.loads((result.run_dir / "report.json").read_text())
    assert report == json.loads(json.dumps(result.report))
    assert report["preprocessing"]["crop_pct"] == 0.875
    images, labels = validation_arrays()
    predicted = np.argmax(result.model.predict(images, verbose=0), axis=1)
    assert report["accuracy"] == sk.accuracy_score(labels, predicted)
    assert report["validation_images"] == len(labels) == 40
    np.testing.assert_array_equal(
        report["confusion_matrix"],
        sk.confusion_matrix(labels, predicted, labels=range(10)),
    )
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        labels, predicted, labels=range(10), zero_division=0
    )
    for i in range(10):
        row = report["per_class"][str(i)]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx(
            (precision[i], recall[i], f1[i]), abs=1e-12
        )
        assert row["support"] == support[i]
    assert report["versions"]["keras"] == keras.__version__
    assert report["versions"]["tensorflow"] == tf.__version__
    assert report["versions"]["keras_eca"] == keras_eca.__version__
    assert report["versions"]["numpy"] == np.__version__
    assert report["versions"]["python"] == ".".join(
        map(str, sys.version_info[:3])
    )
    assert report["parameters"]["total"] == result.model.count_params()
    assert report["seconds"]["total"] >= report["seconds"]["training"] > 0
    settings = report["settings"]
    assert (settings["model"], settings["image_size"], settings["epochs"]) == (
        "eca_resnet18", 32, 2
    )
    assert settings["seed"] == 0 and settings["flip"] is True
    assert [p["name"] for p in report["phases"]] == ["scratch"]
    assert report["weights"]["pretrained"] is False
    assert [row["epoch"] for row in report["history"]] == [1, 2]
    assert "ECA blocks" in report["attention_figure"]["description"]
    train = data_lib.resolve_source(
        helpers.digits(COUNT), validation_fraction=0.2, seed=0
    )
    expected = finetune.class_weights(finetune_data.training_labels(train), 10)
    assert report["class_weights"] == {str(c): w for c, w in expected.items()}


def test_model_keras_reloads_with_the_same_outputs(run):
    result, _ = run
    images, _ = validation_arrays()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. optimizer variables skipped
        reloaded = keras.saving.load_model(result.run_dir / "model.keras")
    # Adam's moments are not saved: about the size of the weights alone.
    size = (result.run_dir / "model.keras").stat().st_size
    assert size < 1.2 * 4 * result.model.count_params()
    np.testing.assert_array_equal(
        reloaded.predict(images, verbose=0), result.model.predict(images, verbose=0)
    )
    assert reloaded.get_layer("backbone").get_layer("preprocessing")


SERVE = textwrap.dedent(
    """
    import importlib.util, sys

    sys.path.append(sys.argv[6])  # site-packages without keras, keras_eca
    assert importlib.util.find_spec("keras") is None
    assert importlib.util.find_spec("keras_eca") is None
    import numpy as np
    import tensorflow as tf

    inputs = np.load(sys.argv[1], allow_pickle=False)
    files = sys.argv[5].split(",")
    outputs = {}

    def array(tensor):
        if tensor.dtype == tf.string:  # names: a unicode array, no pickle
            return np.char.decode(tensor.numpy().astype(bytes), "utf-8")
        return tensor.numpy()

    for name in ("run", "bicubic"):
        loaded = tf.saved_model.load(sys.argv[2 if name == "run" else 3])
        encoded = tf.constant([open(f, "rb").read() for f in files])
        by_bytes = loaded.serve_bytes(encoded)
        by_images = loaded.serve_images(tf.constant(inputs["array"]))
        default = loaded.signatures["serving_default"](images=encoded)
        for key, value in by_bytes.items():
            outputs[f"{name}/bytes/{key}"] = array(value)
            outputs[f"{name}/default/{key}"] = array(default[key])
        for key, value in by_images.items():
            outputs[f"{name}/images/{key}"] = array(value)
    assert not [m for m in sys.modules if m.split(".")[0] in ("keras", "keras_eca")]
    np.savez(sys.argv[4], **outputs)
    """
)


def prepared(image, crop_pct=1.0, interpolation="bilinear"):
    return transforms.evaluation_transform(
        image, image_size=32, crop_pct=crop_pct, interpolation=interpolation
    ).numpy()


def test_the_saved_model_serves_without_keras_eca(run, tmp_path):
    result, _ = run
    # Real encoded files of other sizes than the model's: a PNG and a JPEG.
    big, _ = helpers.digits(3, size=48, offset=COUNT)
    encoded = [helpers.encode(big[0], "png"), helpers.encode(big[1], "jpg")]
    array = np.stack([big[2], big[0]]).astype(np.float32)[:, :40, :]  # 48x40
    np.savez(tmp_path / "inputs.npz", array=array)
    files = [tmp_path / "digit.png", tmp_path / "digit.jpg"]
    for path, data in zip(files, encoded):
        path.write_bytes(data)
    bicubic = finetune.export_serving_model(
        result.model, tmp_path / "bicubic", class_names=list("abcdefghij"),
        image_size=32, crop_pct=0.875, interpolation="bicubic",
    )
    # A Python where only TensorFlow and its dependencies are installed:
    # site-packages less Keras, keras_eca and the .pth files (-S: no site,
    # -I: no PYTHONPATH, no current folder).
    site = tmp_path / "site-packages"
    site.mkdir()
    for entry in pathlib.Path(np.__file__).parents[1].iterdir():
        name = entry.name.lower()
        if not name.startswith(("keras", "__editable__")) and not name.endswith(".pth"):
            (site / entry.name).symlink_to(entry)
    subprocess.run(
        [sys.executable, "-I", "-S", "-c", SERVE, str(tmp_path / "inputs.npz"),
         str(result.run_dir / "saved_model"), str(bicubic),
         str(tmp_path / "outputs.npz"), ",".join(map(str, files)), str(site)],
        check=True, cwd=tmp_path, timeout=600,
    )
    served = np.load(tmp_path / "outputs.npz")
    for name, crop, method, names in (
        ("run", 0.875, "bilinear", [str(i) for i in range(10)]),
        ("bicubic", 0.875, "bicubic", list("abcdefghij")),
    ):
        decoded = [
            transforms.decode_image(data, dct_method="INTEGER_ACCURATE").numpy()
            for data in encoded
        ]
        for kind, sources in (("bytes", decoded), ("images", list(array))):
            batch = np.stack([prepared(x, crop, method) for x in sources])
            expected = result.model.predict(batch, verbose=0)
            got = served[f"{name}/{kind}/probabilities"]
            np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
            ids = served[f"{name}/{kind}/top_class_ids"]
            np.testing.assert_array_equal(ids[:, 0], np.argmax(expected, 1))
            np.testing.assert_allclose(
                served[f"{name}/{kind}/top_probabilities"],
                np.take_along_axis(got, ids, 1), rtol=0, atol=0,
            )
            assert ids.shape == (2, 5)
            assert served[f"{name}/{kind}/top_class_names"].tolist() == [
                [names[i] for i in row] for row in ids
            ]
        np.testing.assert_array_equal(
            served[f"{name}/default/probabilities"],
            served[f"{name}/bytes/probabilities"],
        )


def test_predict_and_the_cli(run, tmp_path, capsys):
    result, _ = run
    big, _ = helpers.digits(2, size=40, offset=COUNT)
    paths = []
    for image, fmt in zip(big, ("png", "jpg")):
        path = tmp_path / f"digit.{fmt}"
        path.write_bytes(helpers.encode(image, fmt))
        paths.append(str(path))
    predictions = finetune.predict(result.run_dir, paths, top=3)
    assert [len(p["classes"]) for p in predictions] == [3, 3]
    for p in predictions:
        assert p["probabilities"] == sorted(p["probabilities"], reverse=True)
        assert p["classes"] == [str(i) for i in p["class_ids"]]
        assert abs(float(np.sum(p["all_probabilities"])) - 1) < 1e-5
    same = finetune.predict(result.run_dir / "saved_model", [open(paths[0], "rb").read()])
    assert same[0]["class_ids"][:3] == predictions[0]["class_ids"]
    from_array = finetune.predict(result.run_dir, big[0])
    assert from_array[0]["classes"][0] == predictions[0]["classes"][0]

    assert cli.main(["predict", str(result.run_dir), *paths, "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == paths[0] and lines[4] == paths[1]
    for line, name, probability in zip(
        lines[1:4], predictions[0]["classes"], predictions[0]["probabilities"]
    ):
        assert line.split() == [name, f"{probability:.4f}"]
    with pytest.raises(SystemExit, match="keras-eca predict: .*not an existing file"):
        cli.main(["predict", str(result.run_dir), str(tmp_path / "missing.png")])
    with pytest.raises(SystemExit, match="neither a finetune run folder"):
        cli.main(["predict", str(tmp_path), paths[0]])
    with pytest.raises(SystemExit, match=r"`top` must be an integer from 1 to 5"):
        cli.main(["predict", str(result.run_dir), paths[0], "--top", "7"])


def test_serving_latency_benchmark(run, capsys):
    from keras_eca.benchmark import serving as bench

    result, _ = run
    latency = bench.serving_latency(
        result.run_dir, batch_sizes=(1, 4), repeats=2, warmup=1
    )
    assert latency["image_size"] == 32 and latency["source_image_size"] == 37
    assert sorted(latency["batches"]) == [1, 4]
    for batch, row in latency["batches"].items():
        assert 0 < row["min_ms"] <= row["median_ms"] <= row["max_ms"]
        assert row["images_per_s"] == pytest.approx(1000 * batch / row["median_ms"])
    bench.main([str(result.run_dir), "--batch-sizes", "1,2", "--repeats", "2"])
    out = capsys.readouterr().out
    assert "JPEG bytes of 37 px in, class names out" in out
    assert "batch   1:" in out and "batch   2:" in out
    with pytest.raises(ValueError, match="repeats=0"):
        bench.serving_latency(result.run_dir, repeats=0)


@pytest.mark.slow
def test_time_default_finetune_runs_the_command(tmp_path):
    from keras_eca.benchmark import serving as bench

    folder = helpers.write_folder(tmp_path / "data", {"a": 12, "b": 12})
    timed = bench.time_default_finetune(
        tmp_path / "run",
        extra_args=["--dataset", str(folder), "--epochs", "1", "--image-size", "32",
                    "--weights", "none", "--batch-size", "8"],
    )
    assert timed["wall_seconds"] > timed["report_seconds"]["total"] > 0
    assert 0 <= timed["accuracy"] <= 1 and timed["epochs"] == 1
    assert timed["weights"] == "random initialisation"
    assert "Validation accuracy:" in timed["stdout"]
    assert (tmp_path / "run" / "saved_model" / "saved_model.pb").is_file()
