"""Reading PyTorch and safetensors checkpoints as numpy arrays, safely.

`load_checkpoint` reads `.safetensors` files and both `torch.save` formats
(the zip archive of torch >= 1.6 and the legacy format of earlier
versions, e.g. the official ECA-Net `.pth.tar` files) into a flat
`dict[str, numpy.ndarray]` state_dict, without importing torch.

PyTorch files are pickles, and a pickle can run any code while it loads.
These are read with a restricted unpickler that only rebuilds tensors and
plain containers: every global a pickle asks for must be on a short
allowlist (`keras_eca.checkpoints.unpickler.ALLOWED_GLOBALS`) and is
replaced by an inert stand-in; any other global raises
`UnsafeCheckpointError` before anything runs.

`save_state_dict_pth` writes `.pth` files in either format with numpy
only, e.g. to build test fixtures on machines without torch.
"""

from keras_eca.checkpoints.errors import CheckpointTooLargeError
from keras_eca.checkpoints.errors import UnsafeCheckpointError
from keras_eca.checkpoints.loading import load_checkpoint
from keras_eca.checkpoints.state_dict import extract_state_dict
from keras_eca.checkpoints.writer import save_state_dict_pth

__all__ = [
    "CheckpointTooLargeError",
    "UnsafeCheckpointError",
    "extract_state_dict",
    "load_checkpoint",
    "save_state_dict_pth",
]
