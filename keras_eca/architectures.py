"""Architecture facts that both the builders and the converters need.

`keras_eca.applications` builds models from these tables and
`keras_eca.conversion` maps checkpoint names through them; keeping them
here, below both, lets data flow one way: layers <- architectures <-
conversion <- applications (whose weight loading calls conversion).
"""

# (t, c, n, s) of torchvision / official ECA MobileNetV2: expansion,
# output width, repeats and first stride of each stage.
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def block_stage_indices(stages):
    """The stage (row of `stages`) of every block, blocks counted from 1.

    Example:

    >>> from keras_eca import architectures
    >>> indices = architectures.block_stage_indices(
    ...     architectures.MOBILENET_V2_STAGES)
    >>> indices[1], indices[2], indices[17]
    (0, 1, 6)
    """
    indices = {}
    block = 1
    for stage_index, (_, _, repeats, _) in enumerate(stages):
        for _ in range(repeats):
            indices[block] = stage_index
            block += 1
    return indices
