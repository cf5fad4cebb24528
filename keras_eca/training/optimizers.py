"""SGD with PyTorch's semantics: coupled weight decay, lr outside momentum.

`torch.optim.SGD(params, lr, momentum, weight_decay, nesterov)` (with
`dampening=0`), which trained the ECA-Net and SA-Net models, does per
parameter `w`, gradient `g`:

    d = g + weight_decay * w          # L2, coupled: it enters the momentum
    v = momentum * v + d              # (v = d at the first step)
    d = d + momentum * v if nesterov else v
    w = w - lr * d

Keras' `keras.optimizers.SGD` differs twice: its momentum buffer holds
`lr * g` (so a learning-rate drop acts on the buffer gradually, not at
once), and its `weight_decay` is decoupled (`w -= lr * wd * w`, never
entering the buffer). `SGD` below reproduces PyTorch's update exactly,
with `keras.ops` only, so it runs on every backend.
"""

import keras
from keras import ops

from keras_eca._checks import is_finite_number


@keras.saving.register_keras_serializable(package="keras_eca")
class SGD(keras.optimizers.Optimizer):
    """Stochastic gradient descent as `torch.optim.SGD` (dampening 0).

    Args:
        learning_rate: float, a `keras.optimizers.schedules`
            `LearningRateSchedule` or a callable. Defaults to 0.01.
        momentum: float in [0, 1). 0 disables the buffer. Defaults to 0.
        nesterov: bool. PyTorch's Nesterov variant. Defaults to `False`.
        weight_decay: float >= 0, the coupled L2 factor: `weight_decay * w`
            is added to every gradient before the momentum, on every
            variable the optimizer updates (BatchNorm scale and offset and
            biases included, as `model.parameters()` in PyTorch).
            Defaults to 0.
        decoupled_weight_decay: float or `None`: Keras' decoupled weight
            decay (`w -= lr * decoupled_weight_decay * w`), the base
            class' `weight_decay` under another name. Defaults to `None`.
        **kwargs: the other `keras.optimizers.Optimizer` arguments
            (`use_ema`, `ema_momentum`, `clipnorm`, `loss_scale_factor`,
            `gradient_accumulation_steps`, `name`, ...).

    Example:

    >>> optimizer = keras_eca.training.SGD(0.1, momentum=0.9, weight_decay=1e-4)
    >>> w = keras.Variable([1.0, -2.0])
    >>> optimizer.apply([keras.ops.convert_to_tensor([0.5, 0.5])], [w])
    >>> [round(float(x), 5) for x in keras.ops.convert_to_numpy(w)]
    [0.94999, -2.04998]
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=0.0,
        decoupled_weight_decay=None,
        name="SGD",
        **kwargs,
    ):
        if not is_finite_number(momentum) or not 0 <= momentum < 1:
            raise ValueError(
                f"momentum must be in [0, 1). Received: momentum={momentum!r}"
            )
        if not is_finite_number(weight_decay) or weight_decay < 0:
            raise ValueError(
                "weight_decay must be a number >= 0. Received: "
                f"weight_decay={weight_decay!r}"
            )
        if not isinstance(nesterov, bool):
            raise TypeError(
                f"nesterov must be a bool. Received: nesterov={nesterov!r}"
            )
        if nesterov and momentum == 0:
            raise ValueError(
                "nesterov=True needs a momentum > 0, as in PyTorch. "
                f"Received: momentum={momentum!r}"
            )
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=decoupled_weight_decay,
            name=name,
            **kwargs,
        )
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.coupled_weight_decay = float(weight_decay)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentum_buffers = []
        if self.momentum:
            self.momentum_buffers = [
                self.add_variable_from_reference(variable, "momentum_buffer")
                for variable in variables
            ]

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        step = ops.cast(gradient, dtype)
        if self.coupled_weight_decay:
            step = ops.add(
                step,
                ops.multiply(ops.cast(self.coupled_weight_decay, dtype), variable),
            )
        if self.momentum:
            # The lookup Keras' own custom-optimizer example uses.
            buffer = self.momentum_buffers[self._get_variable_index(variable)]
            momentum = ops.cast(self.momentum, dtype)
            # PyTorch starts the buffer at the first d; with zeros and
            # dampening 0, momentum * 0 + d is the same value.
            velocity = ops.add(ops.multiply(buffer, momentum), step)
            self.assign(buffer, velocity)
            if self.nesterov:
                step = ops.add(step, ops.multiply(velocity, momentum))
            else:
                step = velocity
        self.assign_sub(variable, ops.multiply(learning_rate, step))

    def get_config(self):
        config = super().get_config()
        config["decoupled_weight_decay"] = config.pop("weight_decay")
        config.update(
            momentum=self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.coupled_weight_decay,
        )
        return config
