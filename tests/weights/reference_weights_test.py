"""Checkpoint files -> `build_model(weights=path)`, number for number.

Every model fixture of tests/data/reference is written as a PyTorch file
(by torch itself and by `keras_eca.checkpoints.save_state_dict_pth`, zip
and legacy formats; the legacy files of the official models wrap the
state_dict like the official training scripts: `module.` prefixes, epoch,
optimizer) and as `.safetensors`, then loaded through
`build_model(name, weights=path)`. The model must reproduce the logits,
the pooled features and the four stage outputs of the original PyTorch
model within 1e-4 of the largest reference value.

The default run keeps, for each source (official ECA-Net, official
SA-Net, timm), a `.pth` written by torch, a legacy `.pth.tar` written by
the project's writer (with the official wrapping for the official
models) and a `.safetensors` file; the other combinations are `slow`.
"""

import pytest

from keras_eca import applications
from tests import reference_fixtures as fixture_utils
from tests.weights import helpers

WRITERS = ("torch", "torch_legacy", "own", "own_legacy", "safetensors")
EXTENSIONS = {
    "torch": ".pth",
    "torch_legacy": ".pth.tar",
    "own": ".pth",
    "own_legacy": ".pth.tar",
    "safetensors": ".safetensors",
}
DEFAULT_RUN = {
    # official ECA-Net
    ("official_eca_resnet18", "torch"),
    ("official_eca_resnet18", "own_legacy"),
    ("official_eca_resnet18", "safetensors"),
    ("official_eca_mobilenet_v2", "torch_legacy"),
    ("official_eca_mobilenet_v2", "own_legacy"),
    ("official_eca_mobilenet_v2", "safetensors"),
    ("official_eca_resnet50", "own_legacy"),
    # official SA-Net
    ("official_sa_resnet50", "torch"),
    ("official_sa_resnet50", "own_legacy"),
    ("official_sa_resnet50", "safetensors"),
    # timm
    ("timm_ecaresnet26t", "torch"),
    ("timm_ecaresnet26t", "own_legacy"),
    ("timm_ecaresnet26t", "safetensors"),
    ("timm_ecaresnet50d", "safetensors"),
    ("timm_resnet50", "own"),
    ("timm_seresnet50", "torch"),
}
CASES = [
    pytest.param(
        fixture,
        writer,
        marks=() if (fixture, writer) in DEFAULT_RUN else pytest.mark.slow,
        id=f"{fixture}-{writer}",
    )
    for fixture in sorted(fixture_utils.MODEL_FIXTURES)
    for writer in WRITERS
]


def test_default_run_covers_every_fixture_and_source():
    fixtures = {fixture for fixture, _ in DEFAULT_RUN}
    assert fixtures == set(fixture_utils.MODEL_FIXTURES)
    for source in ("official_eca_", "official_sa_", "timm_"):
        writers = {w for f, w in DEFAULT_RUN if f.startswith(source)}
        assert {"own_legacy", "safetensors"} <= writers, source
        assert writers & {"torch", "torch_legacy"}, source


@pytest.mark.parametrize("fixture, writer", CASES)
def test_checkpoint_file_reproduces_reference(tmp_path, fixture, writer):
    architecture = fixture_utils.MODEL_FIXTURES[fixture]
    path = helpers.write_checkpoint(
        fixture, writer, tmp_path / f"{architecture}{EXTENSIONS[writer]}"
    )
    model = applications.build_model(
        architecture,
        weights=str(path),
        input_shape=(96, 96, 3),
        classifier_activation=None,
    )
    differences = helpers.max_differences(model, fixture)
    worst = max(differences.values())
    print(f"{fixture} {writer}: max|diff|/max|ref| = {worst:.2e}")
    assert worst <= fixture_utils.RELATIVE_TOLERANCE, differences


@pytest.mark.parametrize(
    "fixture",
    [
        "official_eca_mobilenet_v2",
        pytest.param("timm_ecaresnet50d", marks=pytest.mark.slow),
    ],
)
def test_checkpoint_without_top_gives_the_reference_features(
    tmp_path, fixture
):
    architecture = fixture_utils.MODEL_FIXTURES[fixture]
    path = helpers.write_checkpoint(
        fixture, "own", tmp_path / f"{architecture}.pth"
    )
    model = applications.build_model(
        architecture,
        weights=str(path),
        include_top=False,
        pooling="avg",
        input_shape=(96, 96, 3),
    )
    difference = helpers.logits_difference(model, fixture, key="features")
    assert difference <= fixture_utils.RELATIVE_TOLERANCE
