"""Seeds: any non-negative integer (numpy integers included) is accepted; bools, floats and
negatives are refused. The CPU's bf16 units come from /proc/cpuinfo's flags, [] without it."""
import io
import warnings

import numpy as np
import pytest
import torch

import ddim_edu as de


@pytest.mark.parametrize("seed", [np.int64(7), np.int32(7), np.uint64(7), 7])
def test_numpy_integer_seeds(seed):
    g = de.env.generator(seed)
    assert g.initial_seed() == 7
    ref = torch.randn(3, generator=de.env.generator(7))
    torch.testing.assert_close(torch.randn(3, generator=g), ref)
    g2 = de.env.seed_everything(seed)
    assert g2.initial_seed() == 7 and torch.initial_seed() == 7


@pytest.mark.parametrize("seed", [True, -1, np.int64(-1), 1.0, np.float64(1.0), "1", None])
def test_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        de.env.generator(seed)
    if seed is not None:                      # seed_everything(None) is the course seed
        with pytest.raises(ValueError, match="seed must be a non-negative int"):
            de.env.seed_everything(seed)


def test_course_seed_reads_the_environment(monkeypatch):
    monkeypatch.delenv("DDIM_EDU_SEED", raising=False)
    assert de.env.course_seed() == 0
    monkeypatch.setenv("DDIM_EDU_SEED", "7")
    assert de.env.course_seed() == 7
    assert de.env.seed_everything().initial_seed() == 7 and torch.initial_seed() == 7
    a = torch.randn(3, generator=de.env.seed_everything())
    assert torch.equal(a, torch.randn(3, generator=de.env.generator(7)))
    for bad in ("-1", "x", "1.5"):
        monkeypatch.setenv("DDIM_EDU_SEED", bad)
        with pytest.raises(ValueError, match="DDIM_EDU_SEED"):
            de.env.seed_everything()


@pytest.mark.parametrize("text, model, flags", [
    ("processor\t: 0\nmodel name\t: AMD EPYC 7R13 Processor\nflags\t\t: fpu avx2\nflags\t\t: other\n",
     "AMD EPYC 7R13 Processor", ["fpu", "avx2"]),                 # the first line of each name
    ("processor\t: 0\nmodel name\t:\nflags\t\t:\n", "", []),  # present but empty
    ("flags\nmodel name AMD\nflagsx\t: avx2\n", None, None),   # no colon, or another name: not these lines
    ("processor\t: 0\nFeatures\t: fp asimd\nCPU part\t: 0xd0c\n", None, None),   # ARM: neither line
    (None, None, None),                                         # no /proc/cpuinfo
])
def test_cpu_model_and_flags_read_their_own_cpuinfo_lines(monkeypatch, text, model, flags):
    import io

    def fake_open(path, *a, **k):
        if text is None:
            raise FileNotFoundError(path)
        return io.StringIO(text)
    monkeypatch.setattr(de.env, "open", fake_open, raising=False)
    assert de.env.cpu_model() == model and de.env.cpu_flags() == flags
    assert de.env.describe()["cpu"] == model


@pytest.mark.parametrize("text, units, emulated", [
    ("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile amx_bf16\n", ["amx_bf16", "avx512_bf16"],
     False),
    ("flags\t\t: fpu sse2 avx2 fma\n", [], True),             # a laptop without bf16 units: emulated, slower
    ("processor\t: 0\nFeatures\t: fp asimd bf16\n", [], False),   # no x86 "flags" line (an ARM /proc/cpuinfo)
    (None, [], False),                                        # no /proc/cpuinfo (macOS, Windows): nothing known
])
def test_cpu_bf16_units_reads_the_cpuinfo_flags(monkeypatch, text, units, emulated):
    import io

    def fake_open(path, *a, **k):
        assert path == "/proc/cpuinfo"
        if text is None:
            raise FileNotFoundError(path)
        return io.StringIO(text)
    monkeypatch.setattr(de.env, "open", fake_open, raising=False)
    assert de.env.cpu_bf16_units() == units
    assert de.env.describe()["cpu_bf16"] == units
    assert de.env.cpu_bf16_emulated() is emulated
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert de.env.warn_bf16_emulated(True, "cpu") is emulated
        assert not de.env.warn_bf16_emulated(False, "cpu") and not de.env.warn_bf16_emulated(None, "cpu")
        assert not de.env.warn_bf16_emulated(True, torch.device("cuda"))          # a GPU has its own bf16
    assert [str(w.message) for w in caught] == [de.env.BF16_EMULATED] * emulated


class _Terminal(io.StringIO):
    def isatty(self):
        return True


class _NotebookOutput(io.StringIO):     # stands for ipykernel.iostream.OutStream, a notebook cell's stderr
    __module__ = "ipykernel.iostream"


@pytest.mark.parametrize("stream, most", [(io.StringIO, 100 // 30 + 3), (_Terminal, None), (_NotebookOutput, None)])
def test_progress_bar_redraws_rarely_into_a_log(monkeypatch, stream, most):
    """A bar written to a file or pipe redraws about every 30 s of (here simulated) time; one on a terminal
    or in a notebook at every step that takes over 0.1 s: 100 steps of one second each."""
    import tqdm.std
    clock = iter(range(10_000))
    monkeypatch.setattr(tqdm.std, "time", lambda: float(next(clock)))
    out = stream()
    for _ in de.env.progress_bar(range(100), progress=True, file=out, leave=True):
        pass
    redraws = out.getvalue().count("\r")
    if most is None:
        assert redraws >= 90
    else:
        assert 3 <= redraws <= most
