"""precision="auto": bf16 autocast where the hardware computes bf16 natively, fp32 elsewhere."""

import pytest
import torch

import cnnzoo
from cnnzoo.training import precision

CPU = torch.device("cpu")
ZEN4_FLAGS = "flags\t\t: fpu vme avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS_FLAGS = "flags\t\t: fpu avx512f avx512bw amx_bf16 amx_tile amx_int8\n"
SKYLAKE_FLAGS = "flags\t\t: fpu vme avx2 avx512f avx512bw avx512vl avx512_vnni\n"


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [
        (ZEN4_FLAGS, True),
        (SAPPHIRE_RAPIDS_FLAGS, True),
        (SKYLAKE_FLAGS, False),  # AVX-512 without BF16: bf16 would be emulated
        ("processor\t: 0\nmodel name\t: avx512_bf16 in a name is no flag\n", False),
        ("", False),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo, native):
    assert precision.cpuinfo_has_native_bf16(cpuinfo) is native


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, None)])
def test_auto_is_bf16_on_a_cpu_with_native_bf16_only(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert precision.resolve_precision("auto", CPU) is expected
    assert precision.resolve_precision("fp32", CPU) is None
    assert precision.resolve_precision("bf16", CPU) is torch.bfloat16


def test_detection_trusts_torch_and_refuses_to_guess(monkeypatch):
    precision.cpu_has_native_bf16.cache_clear()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(precision, "cpuinfo_has_native_bf16", lambda text: False)
    try:
        assert precision.cpu_has_native_bf16() is False
        precision.cpu_has_native_bf16.cache_clear()
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
        assert precision.cpu_has_native_bf16() is True
    finally:
        precision.cpu_has_native_bf16.cache_clear()


@pytest.mark.parametrize(("native", "recorded"), [(True, "torch.bfloat16"), (False, "fp32")])
def test_fit_records_the_precision_auto_chose(monkeypatch, native, recorded):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    images = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    data = (images, torch.arange(16) % 10)
    history = cnnzoo.fit(cnnzoo.get_model("lenet5"), data, epochs=1, device="cpu", verbose=0)
    assert history.params["precision"] == recorded
