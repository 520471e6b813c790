"""A small active LIF spec shared by the spiking-backend tests (imported by name: tests/ is on sys.path)."""
import neuro


def lif_spec(**changes):
    """20 current-based LIF units at dt = 1 ms, strong enough input and recurrence to spike."""
    base = {"dt": 1.0, "populations[0].neuron.model": "lif", "populations[0].size": 20, "n_inputs": 3,
            "populations[0].neuron.tau_syn": 5.0, "populations[0].neuron.tau_mem": 10.0,
            "populations[0].neuron.tau_readout": 20.0, "input.gain": 3.0, "recurrent.gain": 2.0,
            "input.bias": True}
    base.update(changes)
    return neuro.models.load("romo_rate").replace(**base)
