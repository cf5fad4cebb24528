import pytest

import keras
from keras_eca import layers


def test_list_attention_names_every_layer():
    assert layers.list_attention() == [
        "ceca", "eca", "eca_ns", "sa", "se", "se_gc", "se_var1", "se_var2", "se_var3",
    ]


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"Unknown attention 'ecca'\. Available: \['ceca', 'eca'"):
        layers.get_attention("ecca")


def test_none_means_no_attention():
    assert layers.get_attention(None) is None


def test_kwargs_override_registered_defaults():
    layer = layers.get_attention("ceca", kernel_size=3)
    assert (layer.padding, layer.kernel_size) == ("circular", 3)
    assert layers.get_attention("ceca", padding="zeros").padding == "zeros"


def test_config_dict_with_overrides():
    config = keras.saving.serialize_keras_object(layers.SqueezeExcitation(8))
    layer = layers.get_attention(config, reduction_ratio=4)
    assert type(layer) is layers.SqueezeExcitation and layer.reduction_ratio == 4


def test_instances_and_garbage_are_refused():
    with pytest.raises(ValueError, match="share its weights"):
        layers.get_attention(layers.SqueezeExcitation())
    with pytest.raises(ValueError, match="identifier=3"):
        layers.get_attention(3)
    with pytest.raises(ValueError, match="'class_name' and 'config'"):
        layers.get_attention({"kernel_size": 3})


def test_registering_a_taken_name_raises():
    with pytest.raises(ValueError, match="already registered to keras_eca.layers.efficient_channel_attention.EfficientChannelAttention"):
        layers.register_attention("eca")(type("Other", (keras.layers.Layer,), {}))
    assert layers.get_attention("eca").__class__ is layers.EfficientChannelAttention


def define_gate(scale):
    """What a notebook cell does: define a layer class and register it.
    Each call makes a new class object with the same module and qualname."""

    @layers.register_attention("test_rerun_gate", scale=scale)
    class RerunGate(layers.ChannelGate):
        def __init__(self, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def build_attention(self, channels):
            pass

        def excite(self, pooled):
            return pooled * self.scale

    return RerunGate


def test_rerunning_a_registering_cell_replaces_the_entry():
    from keras_eca.layers import registry

    try:
        first = define_gate(1.0)
        assert layers.register_attention("test_rerun_gate")(first) is first
        second = define_gate(2.0)  # the cell, run again
        assert second is not first
        cls, defaults = layers.attention_defaults("test_rerun_gate")
        assert cls is second and defaults == {"scale": 2.0}
        assert type(layers.get_attention("test_rerun_gate")) is second
        # Keras' serialization registry follows: files load the new class.
        assert keras.saving.get_registered_object("keras_eca>RerunGate") is second
        # Another class under the taken name still raises.
        other = type("RerunGate", (layers.ChannelGate,), {})  # same name, other module
        other.__module__ = "somewhere_else"
        with pytest.raises(ValueError, match="already registered"):
            layers.register_attention("test_rerun_gate")(other)
        assert layers.attention_defaults("test_rerun_gate")[0] is second
    finally:
        registry._ATTENTION.pop("test_rerun_gate", None)


@pytest.mark.parametrize(
    "identifier",
    [keras.layers.Dense, keras.saving.serialize_keras_object(keras.layers.Dense(3))],
    ids=["class", "config"],
)
def test_non_attention_layers_are_refused(identifier):
    with pytest.raises(ValueError, match=r"Dense is not one.*Received: identifier="):
        layers.get_attention(identifier)


def test_attention_subclasses_need_no_registration():
    class Unregistered(layers.SqueezeExcitationVar1):
        pass

    assert type(layers.get_attention(Unregistered)) is Unregistered


def test_user_layers_can_join_the_registry():
    @layers.register_attention("test_identity_gate")
    class IdentityGate(layers.ChannelGate):
        def build_attention(self, channels):
            pass

        def excite(self, pooled):
            return pooled * 0.0

    try:
        layer = layers.get_attention("test_identity_gate")
        assert isinstance(layer, IdentityGate)
        assert keras.saving.get_registered_name(IdentityGate) == "keras_eca>IdentityGate"
    finally:
        from keras_eca.layers import registry

        del registry._ATTENTION["test_identity_gate"]
