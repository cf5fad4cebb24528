"""What the benchmark compares, as data: the models and the target ratios.

A comparison divides a candidate's measurement by its baseline's, both taken
in the same process and interleaved. Throughput ratios must reach at least
the target; memory and time ratios (lower is better) must stay at most the
target.
"""

import dataclasses

# metric kind -> (label, unit, higher is better)
METRIC_KINDS = {
    "inference": ("inference", "img/s", True),
    "training": ("training step", "img/s", True),
    "memory": ("peak training memory", "MiB", False),
    # The probe process's peak resident memory: tensors plus the runtime
    # (graphs, kernel caches), reported next to "memory", without targets.
    "rss": ("peak process memory", "MiB", False),
    # The forward tensors a training step keeps for backward, summed from
    # its TensorFlow graph: exact where the allocator's peak is noisy.
    "activations": ("stored activations", "MiB", False),
}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """`candidate / baseline` for every metric kind named in `targets`."""

    candidate: str
    baseline: str
    targets: dict

    def __post_init__(self):
        unknown = sorted(set(self.targets) - set(METRIC_KINDS))
        if unknown:
            raise ValueError(
                f"`targets` keys must be among {sorted(METRIC_KINDS)}. "
                f"Received: targets={self.targets!r}"
            )

    @property
    def label(self):
        return f"{self.candidate} / {self.baseline}"


# The targets (median ratio over repeats, same run).
DEFAULT_COMPARISONS = (
    Comparison(
        "eca_resnet50",
        "resnet50",
        {"inference": 0.99, "training": 0.97, "memory": 1.02},
    ),
    Comparison(
        "eca_mobilenet_v2", "mobilenet_v2", {"inference": 0.98, "training": 0.96}
    ),
    Comparison("sa_resnet50", "resnet50", {"inference": 0.97}),
    Comparison("se_resnet50", "resnet50", {"inference": 0.95}),
    Comparison(
        "resnet50", "keras_resnet50", {"inference": 1.0, "training": 1.0}
    ),
)

# Startup costs, lower is better: `import keras_eca` on top of `import
# keras` (seconds), and building ECAResNet50 over keras' ResNet50 (ratio).
DEFAULT_IMPORT_TARGET_SECONDS = 0.3
DEFAULT_BUILD_PAIR = ("eca_resnet50", "keras_resnet50")
DEFAULT_BUILD_TARGET_RATIO = 1.2

# Benchmark-only names for keras.applications models (weights=None).
KERAS_APPLICATIONS = {
    "keras_resnet50": "ResNet50",
    "keras_mobilenet_v2": "MobileNetV2",
}


def kind_of(metric):
    """`"inference_b16"` -> `"inference"`: metric names end in the batch size."""
    return metric.rsplit("_b", 1)[0]


def batch_of(metric):
    """`"inference_b16"` -> `16`."""
    return int(metric.rsplit("_b", 1)[1])


def models_of(comparisons):
    """Model names in first-seen order, baselines before candidates."""
    names = []
    for comparison in comparisons:
        for name in (comparison.baseline, comparison.candidate):
            if name not in names:
                names.append(name)
    return names


def metric_kinds_of(comparisons):
    kinds = set()
    for comparison in comparisons:
        kinds.update(comparison.targets)
    return [kind for kind in METRIC_KINDS if kind in kinds]
