"""Test helpers for keras_eca layers (and for users' own attention layers)."""

from keras_eca.testing.layer_harness import check_config_round_trip
from keras_eca.testing.layer_harness import check_keras_round_trip
from keras_eca.testing.layer_harness import check_training_step
from keras_eca.testing.layer_harness import random_input
from keras_eca.testing.layer_harness import run_layer_test
from keras_eca.testing.layer_harness import to_numpy

__all__ = [
    "check_config_round_trip",
    "check_keras_round_trip",
    "check_training_step",
    "random_input",
    "run_layer_test",
    "to_numpy",
]
