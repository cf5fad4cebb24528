"""Attention layers of ECA-Net and SA-Net, and the registry that names them."""

from keras_eca.layers.base import AttentionLayer
from keras_eca.layers.base import ChannelGate
from keras_eca.layers.base import LogitGate
from keras_eca.layers.efficient_channel_attention import (
    EfficientChannelAttention,
)
from keras_eca.layers.efficient_channel_attention import (
    EfficientChannelAttentionNS,
)
from keras_eca.layers.efficient_channel_attention import adaptive_kernel_size
from keras_eca.layers.folded_batch_norm import FoldedBatchNormalization
from keras_eca.layers.registry import attention_defaults
from keras_eca.layers.registry import get_attention
from keras_eca.layers.registry import list_attention
from keras_eca.layers.registry import register_attention
from keras_eca.layers.shuffle_attention import FrozenShuffleAttention
from keras_eca.layers.shuffle_attention import ShuffleAttention
from keras_eca.layers.shuffle_attention import shuffle_order
from keras_eca.layers.squeeze_excitation import SqueezeExcitation
from keras_eca.layers.squeeze_excitation import SqueezeExcitationGroupConv
from keras_eca.layers.squeeze_excitation import SqueezeExcitationVar1
from keras_eca.layers.squeeze_excitation import SqueezeExcitationVar2
from keras_eca.layers.squeeze_excitation import SqueezeExcitationVar3

__all__ = [
    "AttentionLayer",
    "ChannelGate",
    "EfficientChannelAttention",
    "EfficientChannelAttentionNS",
    "FoldedBatchNormalization",
    "FrozenShuffleAttention",
    "LogitGate",
    "ShuffleAttention",
    "SqueezeExcitation",
    "SqueezeExcitationGroupConv",
    "SqueezeExcitationVar1",
    "SqueezeExcitationVar2",
    "SqueezeExcitationVar3",
    "adaptive_kernel_size",
    "attention_defaults",
    "get_attention",
    "list_attention",
    "register_attention",
    "shuffle_order",
]
