"""The CUDA paths of the engine: precisions, layouts, compile, augmentation, devices, resume, DDP.

Skipped on machines without CUDA (CI has none); run on a GPU with
``python -m pytest -q tests/test_cuda.py``. Every run trains a tiny network on a linearly
separable synthetic task, so the assertions hold on any GPU without depending on the training
dynamics of a real data set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import cnnzoo
from cnnzoo.training import StopTraining

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

REPO = Path(__file__).resolve().parents[1]


def stripes(n: int = 512, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes: a bright band of rows whose position is the class, on noise (uint8)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.rand(n, 1, 16, 16, generator=generator) * 0.4
    for k in range(3):
        images[labels == k, :, 4 * k : 4 * k + 4, :] += 0.6
    return (images * 255).round().to(torch.uint8), labels


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(128, 3),
    )


QUICK = {"epochs": 3, "batch_size": 64, "lr": 0.02, "verbose": 0, "device": "cuda"}


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_fit_trains_in_every_precision_layout_and_compile_mode(precision, channels_last, compile):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    model = tiny_net()
    history = cnnzoo.fit(
        model,
        stripes(),
        val_data=0.25,
        precision=precision,
        channels_last=channels_last,
        compile=compile,
        **QUICK,
    )
    assert next(model.parameters()).is_cuda
    recorded = {"fp32": "fp32", "bf16": "torch.bfloat16", "fp16": "torch.float16"}
    assert history.params["precision"] == recorded[precision]
    assert all(torch.isfinite(torch.tensor(history.history["loss"])))
    assert history.history["val_accuracy"][-1] >= 0.9
    result = cnnzoo.evaluate(model, stripes(256, seed=1), precision=precision)
    assert result["accuracy"] >= 0.9


@pytest.mark.parametrize("augment", ["flip+crop", "callable"])
def test_augmentation_runs_on_the_device(augment):
    seen = []

    def brighten(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        seen.append((batch.device.type, generator.device.type))
        noise = torch.rand(batch.shape, device=batch.device, generator=generator)
        return batch + 0.01 * noise

    model = tiny_net()
    history = cnnzoo.fit(
        model, stripes(), augment=brighten if augment == "callable" else augment, **QUICK
    )
    assert history.history["accuracy"][-1] >= 0.9
    if augment == "callable":
        assert seen and set(seen) == {("cuda", "cuda")}


def test_evaluate_and_predict_on_cuda_agree_with_the_cpu():
    model = tiny_net()
    cnnzoo.fit(model, stripes(), **QUICK)
    images, labels = stripes(256, seed=2)
    on_gpu = cnnzoo.predict(model, images, precision="fp32")
    metrics_gpu = cnnzoo.evaluate(model, (images, labels), precision="fp32")
    on_cpu = cnnzoo.predict(model, images, device="cpu")
    metrics_cpu = cnnzoo.evaluate(model, (images, labels), device="cpu")
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)
    assert metrics_gpu["accuracy"] == metrics_cpu["accuracy"]


def test_save_on_cuda_then_load_on_the_cpu_and_back(tmp_path):
    model = cnnzoo.get_model("mini_resnet").cuda()
    path = cnnzoo.save(model, tmp_path / "m.safetensors")
    on_cpu = cnnzoo.load(path, device="cpu")
    assert next(on_cpu.parameters()).device.type == "cpu"
    back = cnnzoo.load(path, device="cuda")
    assert next(back.parameters()).is_cuda
    for key, value in model.state_dict().items():
        assert torch.equal(on_cpu.state_dict()[key], value.cpu()), key
        assert torch.equal(back.state_dict()[key], value), key
    fresh = cnnzoo.get_model("mini_resnet")
    cnnzoo.load_weights(fresh, path, device="cuda")
    assert next(fresh.parameters()).is_cuda


def test_resume_on_cuda_continues_the_run(tmp_path):
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    options = {**QUICK, "seed": 5, "val_data": 0.25, "augment": "flip", "precision": "fp32"}
    full = tiny_net()
    expected = cnnzoo.fit(full, stripes(), **options)

    class Interrupt:
        def on_epoch_end(self, epoch, logs):
            if epoch == 0:
                raise StopTraining

    cnnzoo.fit(tiny_net(), stripes(), checkpoint_dir=tmp_path, callbacks=[Interrupt()], **options)
    resumed_model = tiny_net()
    resumed = cnnzoo.fit(resumed_model, stripes(), checkpoint_dir=tmp_path, resume=True, **options)
    assert resumed.epoch == expected.epoch
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        torch.testing.assert_close(
            torch.tensor(resumed.history[key]), torch.tensor(expected.history[key])
        )
    for key, value in full.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[key], value)


class PairDataset(Dataset):
    """A plain Dataset (not held in memory by cnnzoo): read by DataLoader workers."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images.float() / 255, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def test_a_dataset_through_workers_and_pinned_memory():
    images, labels = stripes()
    model = tiny_net()
    history = cnnzoo.fit(model, PairDataset(images, labels), num_workers=2, **QUICK)
    assert history.history["accuracy"][-1] >= 0.9
    test_images, test_labels = stripes(256, seed=3)
    through_workers = cnnzoo.evaluate(model, PairDataset(test_images, test_labels), num_workers=2)
    assert through_workers["accuracy"] >= 0.9


WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch
    import torch.distributed as dist
    from torch import nn
    import cnnzoo

    out = sys.argv[1]
    dist.init_process_group("nccl")  # one process, but the real NCCL backend
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    images = torch.rand(300, 1, 8, 8, generator=generator) * 0.5
    for k in range(3):
        images[labels == k, :, 2 * k : 2 * k + 3, :] += 1.0
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3),
    )
    history = cnnzoo.fit(
        model, (images, labels), val_data=0.25, epochs=3, batch_size=16, lr=0.02,
        device="cuda", verbose=2, checkpoint=os.path.join(out, "best.safetensors"),
    )
    history.history.pop("epoch_seconds")
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump({"history": history.history, "backend": dist.get_backend()}, f)
    dist.destroy_process_group()
    """
)


def test_fit_under_torchrun_on_nccl(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command = [*launcher, "--nproc_per_node=1", str(script), str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "history.json").read_text())
    assert report["backend"] == "nccl"
    assert report["history"]["val_accuracy"][-1] >= 0.9
    assert (tmp_path / "best.safetensors").is_file()
