"""From a trained model to a deployed one: inference speed and accuracy of each deployment.

For three models, each deployed four ways:

* ``eager``: the PyTorch model in float32 (``torch.inference_mode``), the reference;
* ``compile``: ``torch.compile`` of the same model (inductor; compiled once per batch size,
  the compilation not timed);
* ``ort_fp32``: ``cnnzoo.export`` to ONNX, run in ONNX Runtime;
* ``ort_int8``: ``cnnzoo.export(int8=True)``: ONNX Runtime's static quantization (QDQ,
  per-channel int8 weights, uint8 activations), calibrated on 256 Fashion-MNIST training images.

The models: ``mini_resnet`` and ``resnet18`` (``small_input``) at 28x28, trained briefly on a
Fashion-MNIST subset inside the script (or read from ``--checkpoint``), and ``resnet18`` at
224x224 (untrained: its speed only; its int8 copy is checked against the float model by top-1
agreement on 128 Fashion-MNIST test images upscaled to 224; ``--checkpoint resnet18_224 FILE``
measures a trained one).

Images per second at batch 1 and batch 64, in ``--rounds`` alternating rounds (the order of the
four rotates each round); each ratio to ``eager`` is taken within its round, median and range
reported. Accuracy of each on the first ``--test-images`` of Fashion-MNIST's test split. The
CPU's flags (AVX2, AVX-512, VNNI) are written down: int8 speed-ups depend on them.

Usage::

    nice -n 10 python benchmarks/deploy.py            # ~15 min on 2 CPU cores
    python benchmarks/deploy.py --quick --no-save     # smoke test, about two minutes
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _machine import machine_info, spread, write_result  # noqa: E402

import cnnzoo  # noqa: E402
from cnnzoo.data import load_dataset  # noqa: E402

VARIANTS = ("eager", "compile", "ort_fp32", "ort_int8")
MODELS = {
    "mini_resnet": ("mini_resnet", {}, 28),
    "resnet18_small": ("resnet18", {"small_input": True}, 28),
    "resnet18_224": ("resnet18", {}, 224),
}


def cpu_flags() -> dict[str, Any]:
    """The instruction-set extensions that decide int8 speed."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
    return {name: name in flags for name in wanted}


def subset(data: Any, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count]
    return data.images[order], data.labels[order]


def upscale(images: torch.Tensor, size: int) -> torch.Tensor:
    """``uint8`` images resized to ``size`` (bilinear, antialiased), still ``uint8``."""
    if images.shape[-1] == size:
        return images
    x = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear")
    return x.round().clamp(0, 255).to(torch.uint8)


def build(key: str, args: argparse.Namespace, train: Any) -> tuple[torch.nn.Module, bool]:
    """The model for ``key``, trained (or loaded); returns it and whether it is trained."""
    name, options, size = MODELS[key]
    checkpoint = dict(args.checkpoint or []).get(key)
    if checkpoint:
        return cnnzoo.load(checkpoint).eval(), True
    torch.manual_seed(0)
    model = cnnzoo.get_model(name, num_classes=10, in_channels=1, **options)
    steps = args.train_images.get(key, 0)
    if steps:
        images, labels = subset(train, steps, seed=1)
        cnnzoo.fit(model, (images, labels), epochs=1, batch_size=64, seed=0, verbose=0)
        # Deployed as a user deploys it: saved, then loaded (fit leaves the weights in the
        # channels_last layout it trains with, which slows eager inference on NCHW batches).
        with tempfile.TemporaryDirectory(prefix="cnnzoo-deploy-") as folder:
            path = cnnzoo.save(model, Path(folder) / "model.safetensors")
            return cnnzoo.load(path).eval(), True
    # Untrained: give it the data contract fit would have recorded, so it can be exported.
    model.pretrained_cfg = model.pretrained_cfg.replace(
        input_size=(1, size, size), mean=(train.mean[0],), std=(train.std[0],)
    )
    return model.eval(), False


def normalise(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """The model's inputs for ``uint8`` images, by the model's own preprocessing."""
    preprocess = cnnzoo.transforms(model)
    return torch.stack([preprocess(p) for p in pixels])


def runners(model: torch.nn.Module, folder: Path, calibration: Any, test: Any) -> dict[str, Any]:
    """The four deployments of ``model``, each a function of a normalised float batch."""
    import onnxruntime

    from cnnzoo.deploy import export

    threads = torch.get_num_threads()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    # ONNX Runtime's threads spin after each run by default, waiting for the next: on 2 cores
    # that starves the PyTorch contenders measured after it. Off, each side runs alone.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    start = time.perf_counter()
    export(model, folder / "fp32.onnx", overwrite=True)
    fp32_seconds = time.perf_counter() - start
    start = time.perf_counter()
    report = export(
        model, folder / "int8.onnx", int8=True, calibration=calibration, test=test,
        max_accuracy_drop=1.0, overwrite=True,
    )  # fmt: skip
    int8_seconds = time.perf_counter() - start
    sessions = {
        key: onnxruntime.InferenceSession(
            str(folder / f"{key}.onnx"), options, providers=["CPUExecutionProvider"]
        )
        for key in ("fp32", "int8")
    }
    compiled = torch.compile(model)

    def eager(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return model(x).numpy()

    def compiled_run(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return compiled(x).numpy()

    def session_run(key: str) -> Any:
        return lambda x: sessions[key].run(None, {"input": x.numpy()})[0]

    return {
        "runs": {
            "eager": eager,
            "compile": compiled_run,
            "ort_fp32": session_run("fp32"),
            "ort_int8": session_run("int8"),
        },
        "export_seconds": {"fp32": fp32_seconds, "int8": int8_seconds},
        "report": report,
    }


def images_per_second(run: Any, x: torch.Tensor, min_seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while True:
        run(x)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return count * len(x) / elapsed


def measure(key: str, args: argparse.Namespace, train: Any, test: Any) -> dict[str, Any]:
    size = MODELS[key][2]
    started = time.perf_counter()
    model, trained = build(key, args, train)
    train_seconds = time.perf_counter() - started
    calibration = subset(train, args.calibration_images, seed=2)
    calibration = (upscale(calibration[0], size), calibration[1])
    # An untrained model has no accuracy to measure: a few images check int8's agreement.
    count = args.test_images if trained else min(args.test_images, 128)
    held = (upscale(test.images[:count], size), test.labels[:count])
    with tempfile.TemporaryDirectory(prefix="cnnzoo-deploy-") as folder:
        built = runners(model, Path(folder), calibration, held)
        runs = built["runs"]
        inputs = normalise(model, held[0])
        # Accuracy (or, untrained, agreement with eager) of each on the test images; this also
        # compiles torch.compile's graph for the last batch's shape before any timing.
        logits = {
            name: np.concatenate([run(b) for b in inputs.split(args.batch)])
            for name, run in runs.items()
        }
        labels = held[1].numpy()
        accuracy = {n: float((out.argmax(1) == labels).mean()) for n, out in logits.items()}
        agreement = {
            n: float((out.argmax(1) == logits["eager"].argmax(1)).mean())
            for n, out in logits.items()
        }
        speed: dict[str, Any] = {}
        for batch in (1, args.batch):
            x = inputs[:batch].contiguous()
            for run in runs.values():  # warm-up (and compilation for this shape), not timed
                run(x)
            rounds = []
            for r in range(args.rounds):
                order = VARIANTS[r % 4 :] + VARIANTS[: r % 4]
                seconds = args.min_seconds * (1 if batch > 1 else 0.5)
                rounds.append({n: images_per_second(runs[n], x, seconds) for n in order})
            speed[str(batch)] = {
                "rounds": rounds,
                "images_per_second": {n: spread([r[n] for r in rounds], 1) for n in VARIANTS},
                "against_eager": {
                    n: spread([r[n] / r["eager"] for r in rounds], 2) for n in VARIANTS
                },
            }
            print(
                f"{key} batch {batch}: "
                + ", ".join(
                    f"{n} {speed[str(batch)]['images_per_second'][n]['median']:.0f}/s "
                    f"({speed[str(batch)]['against_eager'][n]['median']:.2f}x)"
                    for n in VARIANTS
                ),
                flush=True,
            )
        report = built["report"]
    return {
        "model": MODELS[key][0],
        "options": MODELS[key][1],
        "input": [1, size, size],
        "trained": trained,
        "train_images": args.train_images.get(key, 0) if trained else 0,
        "train_seconds": train_seconds,
        "export_seconds": built["export_seconds"],
        "test_images": len(labels),
        "accuracy": accuracy if trained else None,
        "agreement_with_eager": agreement,
        "int8_report": {"max_abs_diff": report.max_abs_diff, "accuracy": report.accuracy},
        "speed": speed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny budgets")
    parser.add_argument("--no-save", action="store_true", help="print, write no JSON")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--min-seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--calibration-images", type=int, default=256)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument(
        "--checkpoint", nargs=2, action="append", metavar=("MODEL", "FILE"),
        help="use a trained checkpoint for MODEL (e.g. resnet18_224 runs/r18/model.safetensors)",
    )  # fmt: skip
    args = parser.parse_args()
    args.train_images = {"mini_resnet": 8000, "resnet18_small": 3000}
    if args.quick:
        args.rounds, args.min_seconds, args.test_images = 1, 0.3, 128
        args.calibration_images, args.models = 64, ["mini_resnet"]
        args.train_images = {"mini_resnet": 1024}
    warnings.filterwarnings("ignore")
    machine = machine_info("cpu")
    machine["cpu_flags"] = cpu_flags()
    import onnxruntime

    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    started = time.perf_counter()
    results = {key: measure(key, args, train, test) for key in args.models}
    result = {
        "benchmark": "deploy",
        "machine": machine,
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "settings": {
            "rounds": args.rounds,
            "batch": args.batch,
            "min_seconds": args.min_seconds,
            "test_images": args.test_images,
            "calibration_images": args.calibration_images,
            "quick": args.quick,
        },
        "models": results,
        "seconds": time.perf_counter() - started,
        "load_average_at_end": os.getloadavg(),
    }
    if not args.no_save:
        print(f"wrote {write_result('deploy', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
