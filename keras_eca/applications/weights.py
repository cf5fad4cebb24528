"""Where pretrained weights will come from: the single hook `resolve_weights`.

This version ships no weights files. `resolve_weights` is the only place
that turns a `weights` argument into a file, so adding downloads later
(a table of `"<arch>.<tag>"` -> url + sha256, fetched with
`keras.utils.get_file`) changes this module alone.
"""

from keras_eca.version import __version__


def resolve_weights(architecture, weights, include_top):
    """Returns the weights file to load into a new model, or `None`.

    Args:
        architecture: str. The registry key of the model.
        weights: `None` (random initialization), `"imagenet"`, or the path
            to a weights file, as already validated by `build_model`.
        include_top: bool. Whether the model has its classifier.

    Returns:
        `None` for `weights=None`.

    Raises:
        ValueError: for any other value: no pretrained weights are
            available in this version.
    """
    del include_top  # Selects the top / no-top file once files exist.
    if weights is None:
        return None
    if weights == "imagenet":
        raise ValueError(
            f"Pretrained weights are not available yet in keras_eca "
            f"{__version__}: `weights` must be None (random initialization) "
            f"for {architecture!r}. Received: weights={weights!r}"
        )
    raise ValueError(
        f"Loading a weights file through `weights` is not available yet in "
        f"keras_eca {__version__}: build the model with `weights=None`, then "
        f"call `model.load_weights(path)`, or load a PyTorch state_dict with "
        f"`keras_eca.conversion.load_state_dict`. Received: weights={weights!r}"
    )
