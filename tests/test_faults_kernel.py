"""The compiled rate kernel never trusts its inputs or its cache: wrong shapes are refused before the
call, NaN comes out as NaN (as on PyTorch ops), and a damaged cached library is rebuilt, not loaded."""
import os
import warnings
from pathlib import Path

import pytest
import torch
from neuro.backends import rate_kernel

import neuro

pytestmark = pytest.mark.skipif(rate_kernel.library() is None, reason="no C compiler: the kernel is not built")


def _nets(n=16, seed=0):
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": n, "input.bias": True})
    w = neuro.init_weights(spec, seed)
    return spec, neuro.compile(spec, "rate", w), neuro.compile(spec, "rate", w, dtype=torch.float64)


@pytest.mark.parametrize("width", [3, 200_000])
def test_inputs_of_the_wrong_width_are_refused(width):
    _, net, _ = _nets()
    with pytest.raises(ValueError, match=rf"W_in must have shape \(1, 16, {width}\), got \(1, 16, 1\)"):
        rate_kernel.forward(torch.zeros(5, 1, 2, width), net.W_rec[None], net.W_in[None], net.b[None],
                            net.W_out[None], net.b_out[None], torch.zeros(1, 2, 16), None, 0.8)
    with pytest.raises(ValueError, match="n_inputs"):
        with torch.no_grad():
            net.run(torch.zeros(5, 2, width))


def test_wrong_dtype_and_shapes_are_refused_before_the_call():
    _, net, _ = _nets()
    args = [torch.zeros(5, 1, 2, 1), net.W_rec[None], net.W_in[None], net.b[None], net.W_out[None],
            net.b_out[None], torch.zeros(1, 2, 16), None, 0.8]
    bad_dtype = list(args)
    bad_dtype[1] = bad_dtype[1].double()
    with pytest.raises(ValueError, match="W_rec must be a float32 CPU tensor"):
        rate_kernel.forward(*bad_dtype)
    bad_h0 = list(args)
    bad_h0[6] = torch.zeros(1, 3, 16)
    with pytest.raises(ValueError, match="h0 must have shape"):
        rate_kernel.forward(*bad_h0)
    bad_noise = list(args)
    bad_noise[7] = torch.zeros(4, 1, 2, 16)
    with pytest.raises(ValueError, match="noise must have shape"):
        rate_kernel.forward(*bad_noise)


@pytest.mark.parametrize("where", ["inputs", "W_rec", "W_in"])
def test_nan_propagates_like_the_pytorch_path(where):
    _, net32, net64 = _nets()
    x = torch.rand(12, 3, 1)
    if where == "inputs":
        x[4, 1, 0] = float("nan")
    else:
        for net in (net32, net64):
            with torch.no_grad():
                getattr(net, where)[2, 0] = float("nan")
    assert rate_kernel.usable(x, net32.W_rec, net32.f)
    with torch.no_grad():
        fast = net32.run(x).outputs
        ref = net64.run(x.double()).outputs       # float64: the PyTorch path
    assert torch.isnan(ref).any()
    assert torch.equal(torch.isnan(fast), torch.isnan(ref))
    finite = ~torch.isnan(ref)
    torch.testing.assert_close(fast[finite].double(), ref[finite], rtol=1e-4, atol=1e-5)


def test_a_truncated_cached_library_is_rebuilt_with_a_warning(tmp_path):
    lib = Path(rate_kernel.library()._name)          # the library this process loaded
    (tmp_path / lib.name).write_bytes(lib.read_bytes()[:4096])      # truncated (a full disk, a killed copy)
    record = lib.with_name(lib.name + ".sha256")
    (tmp_path / record.name).write_bytes(record.read_bytes())
    spec = neuro.models.load("romo_rate").replace(**{"populations[0].size": 16})
    report = tmp_path / "report"
    pid = os.fork()        # a fresh load from the damaged cache, in a child: loading it here would kill pytest
    if pid == 0:
        try:
            os.environ.update(NEURO_CACHE=str(tmp_path), NEURO_KERNEL="1")
            rate_kernel._lib, rate_kernel._tried = None, False
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                loaded = rate_kernel.library()
            with torch.no_grad():
                out = neuro.compile(spec, "rate", neuro.init_weights(spec, 0)).run(torch.ones(7, 2, 1)).outputs
            report.write_text(f"{loaded._name}\n{float(out.sum())!r}\n" + "\n".join(str(w.message) for w in caught))
        except BaseException:
            import traceback
            report.write_text(traceback.format_exc())
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"the child died of signal {os.WTERMSIG(status)}"       # not SIGBUS
    assert "Traceback" not in report.read_text(), report.read_text()
    name, total, *messages = report.read_text().splitlines()
    assert name == str(tmp_path / lib.name)
    assert any("does not match its recorded size and hash" in m for m in messages)
    with torch.no_grad():
        here = neuro.compile(spec, "rate", neuro.init_weights(spec, 0)).run(torch.ones(7, 2, 1)).outputs.sum()
    assert total == repr(float(here))
    assert (tmp_path / lib.name).stat().st_size == lib.stat().st_size


def test_non_contiguous_inputs_and_weights_give_the_contiguous_numbers():
    _, net32, net64 = _nets()
    x = torch.rand(3, 12, 1).transpose(0, 1)                 # [12, 3, 1], not contiguous
    with torch.no_grad():
        w = net32.effective()["W_rec"]
        strided = w.t().contiguous().t()                      # the same values, stored column by column
        assert not x.is_contiguous() and not strided.is_contiguous()
        assert rate_kernel.usable(x, strided, net32.f)
        args = (net32.W_in[None], net32.b[None], net32.W_out[None], net32.b_out[None], torch.zeros(1, 3, 16),
                None, net32.alpha)
        fast = rate_kernel.forward(x[:, None], strided[None], *args)[2]
        ref = rate_kernel.forward(x.contiguous()[:, None], w[None], *args)[2]
        assert torch.equal(fast, ref)
        torch.testing.assert_close(net32.run(x).outputs.double(), net64.run(x.double()).outputs, rtol=1e-4, atol=1e-5)
