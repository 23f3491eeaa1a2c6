"""fit under torchrun: two CPU processes (gloo) end with identical weights and histories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from torch import nn
    import cnnzoo

    out, options = sys.argv[1], json.loads(sys.argv[2])
    rank = int(os.environ["RANK"])
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(203) % 3  # odd size: shards need padding to stay in step
    images = torch.rand(203, 1, 8, 8, generator=generator) * 0.5
    for k in range(3):
        images[labels == k, :, 2 * k : 2 * k + 3, :] += 1.0
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3),
    )
    history = cnnzoo.fit(
        model, (images, labels), val_data=0.25, epochs=3, batch_size=16, lr=0.02,
        augment="flip", device="cpu", verbose=2, checkpoint=os.path.join(out, "best.safetensors"),
        **options,
    )
    torch.save(model.state_dict(), os.path.join(out, f"weights{rank}.pt"))
    history.history.pop("epoch_seconds")
    with open(os.path.join(out, f"history{rank}.json"), "w") as f:
        json.dump({"history": history.history, "world_size": history.params["world_size"]}, f)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [{}, {"accumulate": 2, "ema": 0.9, "grad_clip": 1.0}],
    ids=["plain", "accumulate-ema-clip"],
)
def test_two_process_ddp_run_ends_identical_on_both_ranks(tmp_path, options):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["OMP_NUM_THREADS"] = "1"  # two processes on a small machine: do not oversubscribe
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(script), str(tmp_path), json.dumps(options)]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    weights = [torch.load(tmp_path / f"weights{r}.pt", weights_only=True) for r in (0, 1)]
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    histories = [json.loads((tmp_path / f"history{r}.json").read_text()) for r in (0, 1)]
    assert histories[0] == histories[1]  # metrics are reduced over both ranks
    assert histories[0]["world_size"] == 2
    assert (tmp_path / "best.safetensors").is_file()
    # only rank 0 prints: one line per epoch, not two
    assert result.stdout.count("epoch 3/3") == 1
