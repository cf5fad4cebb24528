"""Errors raised by `keras_eca.checkpoints`."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint pickle references a global outside the allowlist.

    Raised before that global is looked up or called: nothing from the
    file has been executed. It is a `ValueError`, so code that handles bad
    checkpoints with `except ValueError` handles this one as well.

    Args:
        global_name: the `module.name` the pickle asked for.
        source: the file (and archive member) being read.

    Attributes:
        global_name: the refused `module.name`.
        source: the file (and archive member) being read.
    """

    def __init__(self, global_name, source):
        self.global_name = global_name
        self.source = source
        super().__init__(
            f"Refused to load {source}: its pickle references the global "
            f"`{global_name}`, which is not on the allowlist of tensor and "
            "container builders of keras_eca.checkpoints. Loading stopped "
            "before the global was looked up, so nothing from the file was "
            "executed. Checkpoints that need arbitrary globals (whole pickled "
            "models, custom classes) can only be opened with "
            "`torch.load(..., weights_only=False)`, which runs their code: do "
            "that only for files from a source you trust, then save "
            "`model.state_dict()`."
        )
