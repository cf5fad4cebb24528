"""Training: the papers' recipes, PyTorch-semantics SGD, schedules, strategies.

Each public name loads its module on first access (a lazy table), so
`import keras_eca.training` imports neither Keras nor TensorFlow:

- `recipes`: `Recipe`, `RECIPES`, `get_recipe`, `list_recipes`,
  `default_recipe_for`, `apply_overrides`.
- `optimizers`: `SGD` (coupled weight decay, as `torch.optim.SGD`).
- `schedules`: `StepDecay`, `EpochExponentialDecay`, `CosineDecay`,
  `ConstantLearningRate`, `LinearWarmup`, `build_schedule`,
  `build_optimizer`, `build_loss`.
- `losses`: `SparseCategoricalCrossentropy` (sparse labels with smoothing).
- `distribution`: `Distribution`, `make_distribution`, `sync_batchnorm`,
  `default_precision`, `default_jit_compile`, `resolve_precision`,
  `resolve_jit_compile`.
- `run`: `train` (a run folder, exact resume), `TrainingRun`,
  `resolve_recipe`.
- `evaluation`: `evaluate` (top-1/top-5 with the weights' own
  preprocessing), `evaluation_settings`.
"""

import importlib

# public name -> module (relative to this package) that defines it.
_LAZY = {
    "Recipe": "recipes",
    "RECIPES": "recipes",
    "get_recipe": "recipes",
    "list_recipes": "recipes",
    "default_recipe_for": "recipes",
    "apply_overrides": "recipes",
    "SGD": "optimizers",
    "StepDecay": "schedules",
    "EpochExponentialDecay": "schedules",
    "CosineDecay": "schedules",
    "ConstantLearningRate": "schedules",
    "LinearWarmup": "schedules",
    "build_schedule": "schedules",
    "build_optimizer": "schedules",
    "build_loss": "schedules",
    "SparseCategoricalCrossentropy": "losses",
    "Distribution": "distribution",
    "make_distribution": "distribution",
    "sync_batchnorm": "distribution",
    "default_precision": "distribution",
    "default_jit_compile": "distribution",
    "resolve_precision": "distribution",
    "resolve_jit_compile": "distribution",
    "train": "run",
    "TrainingRun": "run",
    "resolve_recipe": "run",
    "evaluate": "evaluation",
    "evaluation_settings": "evaluation",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        value = getattr(module, name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
