"""Spec: lossless TOML/JSON round trip; every invalid field raises SpecError naming it."""
import pytest

import neuro
from neuro.spec import NetworkSpec, SpecError, dumps, loads, to_dict


def test_toml_and_json_round_trip_are_lossless():
    spec = neuro.models.load("romo_rate").replace(**{"recurrent.gain": 0.2, "dale.enabled": True,
                                                     "feedback.kind": "random", "recurrent.density": 0.25})
    for fmt in ("toml", "json"):
        again = loads(dumps(spec, fmt), fmt)
        assert again == spec
        assert to_dict(again) == to_dict(spec)


def test_every_ready_model_loads():
    for name in neuro.models.names():
        assert isinstance(neuro.models.load(name), NetworkSpec)


INVALID = [
    ({"dt": 0}, "dt"),
    ({"dt": float("nan")}, "dt"),
    ({"n_inputs": 0}, "n_inputs"),
    ({"recurrent.density": 1.5}, "recurrent.density"),
    ({"recurrent.density": 0.0}, "recurrent.density"),
    ({"recurrent.gain": -1.0}, "recurrent.gain"),
    ({"input.init": "xavier"}, "input.init"),
    ({"readout.trainable": "yes"}, "readout.trainable"),
    ({"populations[0].size": 0}, "populations[0].size"),
    ({"populations[0].neuron.tau": 10.0}, "populations[0].neuron.tau"),   # tau < dt
    ({"populations[0].neuron.activation": "sigmoid"}, "populations[0].neuron.activation"),
    ({"populations[0].neuron.noise_std": -0.1}, "populations[0].neuron.noise_std"),
    ({"populations[0].neuron.model": "izhikevich"}, "populations[0].neuron.model"),
    ({"dale.excitatory_fraction": 1.0}, "dale.excitatory_fraction"),
    ({"feedback.kind": "transpose"}, "feedback.kind"),
]


@pytest.mark.parametrize("change,field", INVALID)
def test_invalid_fields_name_themselves(change, field):
    with pytest.raises(SpecError) as err:
        neuro.models.load("romo_rate").replace(**change)
    assert str(err.value).startswith(field), str(err.value)


def test_lif_fields_are_validated_when_model_is_lif():
    spec = neuro.models.load("romo_rate")
    with pytest.raises(SpecError, match="populations\\[0\\].neuron.reset"):
        spec.replace(**{"dt": 1.0, "populations[0].neuron.model": "lif", "populations[0].neuron.reset": "hard"})


def test_unknown_fields_and_bad_toml_are_refused():
    with pytest.raises(SpecError, match="recurrent.gian is not a known field"):
        loads('[recurrent]\ngian = 1.0\n')
    with pytest.raises(SpecError, match="not valid TOML"):
        loads("dt = = 3")
    with pytest.raises(SpecError, match="does not exist"):
        neuro.load_spec("no/such/spec.toml")
