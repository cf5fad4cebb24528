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
    with pytest.raises(ValueError, match="already registered"):
        layers.register_attention("eca")(type("Other", (keras.layers.Layer,), {}))


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
