"""The benchmark scripts' logic: input adaptation, model selection, the torchvision reference."""

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import cnnzoo
from cnnzoo.data import ImageTensorDataset, channel_stats
from cnnzoo.data.images import resize_pixels

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    if str(ROOT) not in sys.path:  # the scripts live in benchmarks/, outside the package
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"benchmarks.{name}")


reproduce = _load("reproduce")
fashion = _load("_fashion")
train_weights = _load("train_weights")
reproduce_table = _load("_reproduce_table").reproduce_table
model_speed = _load("model_speed")


def _dataset(count: int = 6, side: int = 28) -> ImageTensorDataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 1, side, side), dtype=torch.uint8, generator=generator)
    return ImageTensorDataset(images, torch.arange(count) % 10, list("abcdefghij"), (0.5,), (0.5,))


def test_every_registered_model_has_a_recipe():
    assert set(reproduce.RECIPES) == set(cnnzoo.models.list_models())


def test_select_models_expands_patterns_and_rejects_unknown_names():
    assert reproduce.select_models(["resnet1*", "lenet5"]) == [
        "resnet18",
        "resnet101",
        "resnet152",
        "lenet5",
    ]
    assert reproduce.select_models(["all"]) == list(reproduce.RECIPES)
    with pytest.raises(ValueError, match="no model with a recipe matches 'nope'"):
        reproduce.select_models(["nope"])


@pytest.mark.parametrize(
    ("name", "options", "side"),
    [
        ("lenet5", {}, 28),
        ("cifar_cnn", {}, 32),
        ("alexnet_original", {}, 227),
        ("network_bn", {}, 224),
        ("vgg11", {"small_input": True}, 28),
        ("resnet18", {"small_input": True}, 28),
    ],
)
def test_input_side(name, options, side):
    with torch.device("meta"):
        model = cnnzoo.get_model(name, in_channels=1, **options)
    assert fashion.input_side(model) == side


def test_adapt_pads_a_net_of_free_size_with_black_and_keeps_the_image_centred():
    data = _dataset()
    net = SimpleNamespace(fixed_input_size=False, min_input_size=(32, 32))
    padded = fashion.adapt(data.images, net)
    assert padded.shape == (6, 1, 32, 32) and padded.dtype == torch.uint8
    assert torch.equal(padded[:, :, 2:30, 2:30], data.images)
    assert padded[:, :, :2].sum() == 0 and padded[:, :, :, 30:].sum() == 0


def test_adapt_resizes_a_fixed_size_net_as_predict_resizes_each_file(monkeypatch):
    data = _dataset()
    monkeypatch.setattr("cnnzoo.data.images.RESIZE_CHUNK", 4)
    model = cnnzoo.get_model("cifar_cnn", in_channels=1)
    resized = fashion.adapt(data.images, model)  # chunks of unequal size
    assert resized.shape == (6, 1, 32, 32) and resized.dtype == torch.uint8
    for image, adapted in zip(data.images, resized, strict=True):
        assert torch.equal(adapted, resize_pixels(image, (32, 32), "bilinear"))


def test_adapted_splits_measure_the_statistics_again_on_the_adapted_training_images():
    data = _dataset()
    model = cnnzoo.get_model("cifar_cnn", in_channels=1)
    train, test = fashion.adapted_splits(data, data, model)
    assert (train.mean, train.std) == (test.mean, test.std) == channel_stats(train.images)
    lenet = cnnzoo.get_model("lenet5")
    assert fashion.adapted_splits(data, data, lenet) == (data, data)  # 28x28 stays as it is


def test_reproduce_smoke_run_writes_a_row_per_seed_and_a_summary():
    options = "--models lenet5 --epochs 1 --max-train-images 256 --seeds 0 1 --no-save"
    result = reproduce.main([*options.split(), "--device", "cpu"])
    assert [(row["model"], row["seed"]) for row in result["rows"]] == [("lenet5", 0), ("lenet5", 1)]
    assert result["rows"][0]["train_images"] == 256 and result["rows"][0]["parameters"] == 61_706
    (summary,) = result["summary"]
    accuracies = sorted(row["test_accuracy"] for row in result["rows"])
    assert summary["test_accuracy"] == {
        "median": sum(accuracies) / 2,
        "min": accuracies[0],
        "max": accuracies[1],
    }
    assert "| lenet5 | 61,706 | 28x28 | 1 | 0, 1 |" in reproduce_table(result, "header")


def test_the_tables_cpu_rows_train_the_shipped_weights_recipes():
    for name, recipe in train_weights.RECIPES.items():
        row = reproduce.RECIPES[name]
        assert {**row.fit_options, "epochs": row.epochs, "seed": recipe["seed"]} == recipe
    with pytest.raises(SystemExit, match="--ship-weights trains the weights' own recipe"):
        reproduce.main(["--models", "lenet5", "--epochs", "1", "--ship-weights", "--no-save"])


def _part(tmp_path, name, rows, cpu="AMD EPYC"):
    path = tmp_path / name
    machine = {"cpu": cpu, "torch": torch.__version__}
    path.write_text(json.dumps({"benchmark": "reproduce", "rows": rows, "machine": machine}))
    return path


def test_join_makes_one_table_of_parts_and_refuses_a_run_twice_or_another_machine(tmp_path):
    def row(model, seed, accuracy):
        return {
            "model": model,
            "seed": seed,
            "test_accuracy": accuracy,
            "train_seconds": 10.0,
            "epochs": 1,
            "input_size": [1, 28, 28],
            "parameters": 1,
            "recipe": {},
        }

    first = _part(tmp_path, "a.json", [row("lenet5", 0, 0.90), row("lenet5", 1, 0.92)])
    second = _part(tmp_path, "b.json", [row("lenet5", 2, 0.91)])
    joined = reproduce.join([first, second])
    (summary,) = joined["summary"]
    assert summary["seeds"] == [0, 1, 2] and summary["test_accuracy"]["median"] == 0.91
    with pytest.raises(SystemExit, match="a run twice \\(lenet5 seed 2\\)"):
        reproduce.join([second, _part(tmp_path, "c.json", [row("lenet5", 2, 0.5)])])
    other_recipe = {**row("lenet5", 3, 0.9), "recipe": {"epochs": 2}}
    with pytest.raises(SystemExit, match="lenet5 trained by two recipes"):
        reproduce.join([first, _part(tmp_path, "e.json", [other_recipe])])
    with pytest.raises(SystemExit, match="another machine"):
        reproduce.join([first, _part(tmp_path, "d.json", [row("lenet5", 3, 0.9)], cpu="Intel")])


@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn", "densenet121", "alexnet"])
def test_torchvision_reference_computes_the_same_function(name):
    model = cnnzoo.get_model(name, num_classes=10, small_input=True)
    reference = model_speed.torchvision_reference(model, name)
    assert type(reference).__module__.startswith("torchvision.models")
    assert model_speed.same_function(model, reference, torch.randn(2, 3, 32, 32))


def test_models_without_a_torchvision_twin_have_no_reference():
    assert model_speed.torchvision_reference(cnnzoo.get_model("lenet5"), "lenet5") is None


def test_model_speed_smoke_run():
    result = model_speed.main(["mini_resnet", "--batch-size", "2", "--steps", "1", "--no-save"])
    (row,) = result["rows"]
    assert row["model"] == "mini_resnet" and row["train_images_per_s"] > 0
    assert "train_ratio" not in row


def test_model_options_give_small_input_only_where_the_model_takes_it():
    assert model_speed.model_options("resnet18", small=True) == {"small_input": True}
    assert model_speed.model_options("alexnet_original", small=True) == {}
    assert model_speed.model_options("resnet18", small=False) == {}
    assert (
        model_speed.torchvision_reference(cnnzoo.get_model("alexnet_original"), "alexnet_original")
        is None
    )


# -- peers.py, time_to_accuracy.py, sweep_defaults.py, step_costs.py, render_docs.py ----------
peers = _load("peers")
contenders = _load("_contenders")
time_to_accuracy = _load("time_to_accuracy")
sweep_defaults = _load("sweep_defaults")
step_costs = _load("step_costs")
render_docs = _load("render_docs")

TINY = [
    *("--models", "lenet5", "--rounds", "1", "--round-images", "256", "--warmup", "1"),
    *("--max-train-images", "768", "--max-test-images", "200", "--target", "0.0"),
    *("--max-epochs", "1", "--no-workers", "--no-save"),
]


def test_a_peer_whose_framework_is_missing_is_skipped_with_a_message(monkeypatch, capsys):
    real_find_spec = peers.importlib.util.find_spec
    monkeypatch.setattr(
        peers.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "keras" else real_find_spec(name, *a),
    )
    result = peers.main([*TINY, "--contenders", "fit", "eager", "keras"])
    assert "keras is not installed" in result["skipped"]["keras"]
    assert "pip install 'cnnzoo[bench]'" in result["skipped"]["keras"]
    assert "keras is not installed" in capsys.readouterr().out
    (model,) = result["models"]
    assert {(row["contender"], row["recipe"]) for row in model["rows"]} == {
        ("fit", "same"),
        ("eager", "same"),
    }


def test_peers_smoke_run_measures_images_per_second_and_time_to_target():
    result = peers.main([*TINY, "--contenders", "fit", "eager", "dataloader"])
    (model,) = result["models"]
    rows = {(row["contender"], row["recipe"]): row for row in model["rows"]}
    expected = {("fit", "same"), ("eager", "same"), ("dataloader", "same"), ("dataloader", "own")}
    assert set(rows) == expected
    assert all(row["images_per_s"]["median"] > 0 for row in rows.values())
    for measured in (("fit", "same"), ("eager", "same"), ("dataloader", "own")):
        timing = rows[measured]["to_target"]
        assert timing["how"] == "measured" and timing["reached"] and timing["epochs"] == 1
    assert rows[("dataloader", "same")]["to_target"]["how"].startswith("derived")
    assert "fit_vs_eager_images_per_s" in model["summary"]
    assert model["summary"]["fastest_peer_own_defaults"] == "dataloader"
    same = model["recipes"]["dataloader/same"]
    assert same["optimizer"] == "adamw" and same["schedule"] == "onecycle"
    assert model["recipes"]["dataloader/own"]["batch_size"] == 32


def test_a_contender_in_its_own_process_reports_its_peak_memory():
    limits = {"max_train_images": 768, "max_test_images": 200, "max_epochs": 1}
    worker = peers.Worker("eager", "lenet5", "cpu", limits)
    try:
        speed = worker.call("images_per_second", "same", 256, 1)
        memory = worker.call("memory")
    finally:
        worker.close()
    assert speed["images_per_s"] > 0 and speed["steps"] == 3
    assert memory["peak_rss_mib"] >= memory["rss_at_start_mib"] > 0
    assert not worker.process.is_alive()


def test_a_failing_contender_is_named_and_the_others_go_on(monkeypatch):
    def broken(self, *args):
        raise RuntimeError("boom")

    monkeypatch.setattr(contenders.EagerContender, "_train", broken)
    result = peers.main([*TINY, "--contenders", "fit", "eager"])
    (model,) = result["models"]
    assert "eager failed" in model["skipped"]["eager"] and "boom" in model["skipped"]["eager"]
    assert [row["contender"] for row in model["rows"]] == ["fit"]


def _row(name, recipe, ips, to_target=None):
    row = {"contender": name, "recipe": recipe, "images_per_s": peers.spread(ips)}
    if to_target is not None:
        row["to_target"] = to_target
    return row


def _measured(epochs, seconds, reached=True):
    return {
        "how": "measured",
        "reached": reached,
        "epochs": epochs if reached else None,
        "seconds": seconds if reached else None,
        "seconds_run": seconds,
        "curve": [{}] * epochs,
    }


def test_unmeasured_runs_are_derived_from_the_measured_epochs_of_their_recipe():
    rows = {
        ("fit", "same"): _row("fit", "same", [1000.0], _measured(4, 30.0)),
        ("eager", "same"): _row("eager", "same", [1000.0], _measured(3, 25.0)),
        ("keras", "same"): _row("keras", "same", [500.0]),
        ("keras", "own"): _row("keras", "own", [250.0]),
        ("lightning", "own"): _row("lightning", "own", [400.0], _measured(10, 160.0)),
    }
    peers.derive_to_target(rows, 60_000)
    keras_same = rows[("keras", "same")]["to_target"]
    assert keras_same["epochs"] == 3 and keras_same["seconds"] == 3 * 60_000 / 500
    assert keras_same["how"] == "derived: eager's 3 epochs at this images/s"
    assert rows[("keras", "own")]["to_target"]["seconds"] == 10 * 60_000 / 250
    summary = peers.summarize(rows)
    assert summary["fastest_peer_own_defaults"] == "lightning"
    assert summary["peer_over_fit_time_to_target"] == round(160.0 / 30.0, 2)
    assert summary["fit_vs_keras_images_per_s"]["median"] == 2.0


def test_a_peer_that_never_reaches_the_target_gives_a_lower_bound():
    rows = {
        ("fit", "same"): _row("fit", "same", [1000.0], _measured(4, 20.0)),
        ("dataloader", "own"): _row(
            "dataloader", "own", [300.0], _measured(30, 240.0, reached=False)
        ),
    }
    summary = peers.summarize(rows)
    assert summary["peer_over_fit_time_to_target_at_least"] == 12.0
    assert "peer_over_fit_time_to_target" not in summary


def test_plan_measures_fit_the_loop_and_the_fastest_own_peer():
    rows = {
        ("fit", "same"): _row("fit", "same", [1.0]),
        ("eager", "same"): _row("eager", "same", [1.0]),
        ("dataloader", "own"): _row("dataloader", "own", [3.0, 3.0, 1.0]),
        ("keras", "own"): _row("keras", "own", [2.0]),
    }
    assert peers.plan_to_target(rows, "auto") == [
        ("fit", "same"),
        ("eager", "same"),
        ("dataloader", "own"),
    ]
    assert peers.plan_to_target(rows, "none") == []
    assert peers.plan_to_target(rows, "all") == list(rows)


def test_step_clock_times_the_steps_after_the_warm_up(monkeypatch):
    ticks = iter([10.0, 13.0])
    monkeypatch.setattr(contenders.time, "perf_counter", lambda: next(ticks))
    clock = contenders.StepClock(warmup=2, steps=3, device=torch.device("cpu"))
    assert clock.steps_needed == 6
    for _ in range(6):
        clock.step_started()  # marks at the start of steps 3 and 6
    assert clock.seconds == 3.0
    short = contenders.StepClock(warmup=2, steps=3, device=torch.device("cpu"))
    with pytest.raises(RuntimeError, match="the clock needs 6"):
        short.seconds  # noqa: B018


def test_epoch_clock_pauses_while_the_test_set_is_evaluated(monkeypatch):
    now = {"t": 0.0}
    monkeypatch.setattr(contenders.time, "perf_counter", lambda: now["t"])
    accuracies = iter([0.5, 0.9])

    def evaluate():
        now["t"] += 100.0  # the test pass: not training time
        return next(accuracies)

    clock = contenders.EpochClock(0.8, 5, evaluate, torch.device("cpu"))
    clock.start()
    now["t"] += 10.0
    assert clock.epoch_ended(0) is False
    now["t"] += 10.0
    assert clock.epoch_ended(1) is True
    result = clock.result()
    assert result["reached"] and result["epochs"] == 2 and result["seconds"] == 20.0


def test_same_recipe_is_read_from_fit_and_own_defaults_are_documented():
    same = contenders.fit_defaults(torch.device("cpu"), "vgg11")
    assert same.lr == cnnzoo.models.info("vgg11").recipe.lr  # the model's own rate
    signature = __import__("inspect").signature(cnnzoo.fit).parameters
    assert same.epochs == signature["epochs"].default
    assert same.optimizer == signature["optimizer"].default
    recipes = contenders.recipes("keras", "lenet5", 7, torch.device("cpu"))
    assert recipes["own"].optimizer == "adam" and recipes["own"].lr == 1e-3
    assert recipes["own"].batch_size == 32 and recipes["own"].epochs == 7
    assert set(contenders.recipes("eager", "lenet5", 7, torch.device("cpu"))) == {"same"}


def _need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (the bench extra)")
    if package == "keras":
        contenders.import_keras()  # on the PyTorch backend, before anything else imports it


def test_keras_twins_compute_the_same_logits():
    _need("keras")
    keras_ports = _load("_keras_ports")
    for name in keras_ports.PORTS:
        model = contenders.initial_model(name)
        twin = keras_ports.port(name, model)
        assert keras_ports.same_function(model, twin, torch.randn(3, 1, 28, 28))
    with pytest.raises(ValueError, match="no Keras port of 'vgg11'"):
        keras_ports.port("vgg11", model)


@pytest.mark.parametrize("name", ["lightning", "keras"])
def test_framework_peers_train_and_report(name):
    _need(name)
    result = peers.main([*TINY, "--contenders", name])
    (model,) = result["models"]
    assert {row["recipe"] for row in model["rows"]} == {"same", "own"}
    assert all(row["images_per_s"]["median"] > 0 for row in model["rows"])


def test_time_to_accuracy_alternates_both_sides_and_reports_the_ratio():
    options = "--target 0.0 --max-epochs 1 --rounds 2 --max-train-images 500 --no-save"
    result = time_to_accuracy.main(options.split())
    assert len(result["rounds"]) == 2
    for outcome in result["rounds"]:
        assert outcome["reference"]["epochs"] == outcome["cnnzoo"]["epochs"] == 1
        assert outcome["speedup"] > 0
    assert len(result["summary"]["speedup"]["values"]) == 2
    assert result["one_off_seconds"] >= 0
    assert [outcome["seed"] for outcome in result["rounds"]] == [0, 1]  # a round is a seed
    assert result["summary"]["cnnzoo"]["missed"] == 0


def test_time_to_accuracy_counts_the_rounds_that_miss_and_the_headline_says_so(tmp_path):
    def run(reached, seconds=None, epochs=None):
        return {"reached": reached, "seconds": seconds, "epochs": epochs, "curve": []}

    rounds = [
        {
            "seed": 0,
            "reference": run(True, 100.0, 16),
            "cnnzoo": run(True, 10.0, 4),
            "speedup": 10.0,
        },
        {"seed": 1, "reference": run(True, 90.0, 15), "cnnzoo": run(False)},
        {
            "seed": 2,
            "reference": run(True, 120.0, 17),
            "cnnzoo": run(True, 15.0, 4),
            "speedup": 8.0,
        },
    ]
    result = {
        "target": 0.87,
        "rounds": rounds,
        "summary": {
            "cnnzoo": {
                "rounds": 3,
                "missed": 1,
                "epochs": [4],
                "seconds": time_to_accuracy.spread([10.0, 15.0]),
            },
            "reference": {
                "rounds": 3,
                "missed": 0,
                "epochs": [15, 16, 17],
                "seconds": time_to_accuracy.spread([100.0, 90.0, 120.0]),
            },
            "speedup": time_to_accuracy.spread([10.0, 8.0]),
        },
        "machine": {
            "cpu": "A CPU",
            "cpu_cores": 2,
            "torch_threads": 2,
            "device": "cpu",
            "torch": "2.x",
        },
    }
    headline = render_docs.tta_headline(result, tmp_path / "tta.json")
    assert "**9.0×** (median of the 2 of 3 alternating rounds, one seed each where both" in headline
    assert "fit's 4 epochs missed the target in 1 of 3" in headline
    table = render_docs.tta_table(result, tmp_path / "tta.json")
    assert "4 (1 of 3 rounds missed)" in table and "not reached" in table


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("base", {}),
        ("lr3e-2_e4_bf16", {"lr": 0.03, "epochs": 4, "precision": "bf16"}),
        ("b64_ls0.1", {"batch_size": 64, "label_smoothing": 0.1}),
    ],
)
def test_sweep_candidates_are_read_from_their_names(name, options):
    assert sweep_defaults.parse_candidate(name) == options


def test_sweep_refuses_an_unknown_token_and_runs_a_tiny_candidate():
    with pytest.raises(ValueError, match="unknown token 'x9'"):
        sweep_defaults.parse_candidate("lr1e-2_x9")
    options = "--models lenet5 --candidates lr1e-2_e1 --max-train-images 1024 --target 0.0"
    result = sweep_defaults.main([*options.split(), "--no-save"])
    (row,) = result["rows"]
    assert row["epochs_to_target"] == 1 and row["steps_to_target"] == row["steps_per_epoch"]


def test_step_costs_smoke_and_break_even():
    result = step_costs.main(
        ["batch", "--rounds", "1", "--steps", "1", "--warmup", "0", "--no-save"]
    )
    variants = result["comparisons"]["batch"]["variants"]
    assert variants["batch 128"]["speed_vs_first_median"] == 1.0
    assert all(row["us_per_image_median"] > 0 for row in variants.values())
    rows = {
        "eager": {"us_per_image_median": 100.0, "first_call_seconds": 1.0},
        "torch.compile": {"us_per_image_median": 50.0, "first_call_seconds": 65.0},
    }
    assert step_costs.break_even(rows, batch=100)["steps"] == 12_800  # 64 s / 5 ms
    rows["torch.compile"]["us_per_image_median"] = 120.0
    assert step_costs.break_even(rows, batch=100)["steps"] is None


def _peers_result():
    row = _row("fit", "same", [1000.0, 1100.0, 900.0], _measured(4, 20.0))
    row["memory"] = {"peak_rss_mib": 900.0, "rss_at_start_mib": 850.0}
    recipe = dict(optimizer="adamw", lr=0.02, batch_size=128, schedule="onecycle", epochs=5)
    recipe.update(label_smoothing=0.0, precision="bf16")
    summary = {"fit_vs_eager_images_per_s": peers.spread([0.98, 1.0, 0.99])}
    model = dict(model="lenet5", target=0.87, round_images=7680, rows=[row], skipped={})
    model.update(recipes={"fit/same": recipe}, summary=summary)
    machine = dict(cpu="AMD EPYC", cpu_cores=2, torch_threads=2, device="cpu", torch="2.15")
    machine["load_average_at_start"] = [0.1, 0.1, 0.1]
    return dict(rounds=3, models=[model], machine=machine, skipped={}, versions={"torch": "2.15"})


def test_render_docs_fills_the_marked_parts_from_the_json(tmp_path):
    source = tmp_path / "peers-20261123-120000.json"
    source.write_text(__import__("json").dumps(_peers_result()))
    doc = "a <!-- bench:peers-summary -->old<!-- /bench:peers-summary --> b\n"
    doc += "<!-- bench:peers-tables -->\nold table\n<!-- /bench:peers-tables -->\n"
    doc += "<!-- bench:tta-headline -->kept<!-- /bench:tta-headline -->\n"
    rendered = render_docs.render(doc, {"peers": source, "time_to_accuracy": None})
    assert "`fit` trains at 0.99× [0.98–1.00×] the hand-written loop's images/s" in rendered
    assert "| `cnnzoo.fit` | fit's defaults: AdamW 0.02 one-cycle, batch 128, 5 epochs, bf16" in (
        rendered
    )
    assert "| 1000.0 [900.0–1100.0] | 1.00 | 20.0 s | 4 | 900 (+50) |" in rendered
    assert "old" not in rendered and "kept" in rendered  # no time_to_accuracy JSON: untouched
    assert render_docs.render(rendered, {"peers": source}) == rendered  # idempotent
    with pytest.raises(ValueError, match="unknown generated part 'nope'"):
        render_docs.render("<!-- bench:nope -->x<!-- /bench:nope -->", {"peers": source})


def test_render_docs_writes_the_streaming_table_from_its_json(tmp_path):
    def run(seconds):
        return {"epoch_seconds": [seconds + 1, seconds], "timed": seconds}

    times = [(10.0, 5.0, 4.0, 4.5), (12.0, 4.0, 3.0, 4.0), (11.0, 5.5, 5.0, 5.0)]
    rounds = [
        dict(zip(("tutorial", "streamed", "in_memory", "decoded_cache"), map(run, t), strict=True))
        for t in times
    ]

    def spread(values):
        return {"median": sorted(values)[1], "min": min(values), "max": max(values)}

    names = ("streamed", "in_memory", "decoded_cache")
    summary = {
        name: spread([r["tutorial"]["timed"] / r[name]["timed"] for r in rounds]) for name in names
    }
    memory = {
        f"{mode}_{size}": {"load_peak_mb": 900.0, "main_mb": main, "worker_mb": 400.0}
        for mode, size, main in [
            ("streamed", "1x", 1000.0), ("streamed", "4x", 1100.0),
            ("in_memory", "1x", 1000.0), ("in_memory", "4x", 1400.0),
        ]
    }  # fmt: skip
    memory |= {"streamed_main_mb_growth": 1.1, "in_memory_main_mb_growth": 1.4}
    result = {
        "machine": {
            "cpu": "cpu",
            "cpu_cores": 2,
            "torch_threads": 2,
            "device": "cpu",
            "torch": "2",
        },
        "model": "network_bn",
        "images": 64,
        "batch_size": 32,
        "workers": 1,
        "steps_per_epoch": 2,
        "rounds": rounds,
        "summary": summary,
        "load_seconds": {"streamed": 2.0, "in_memory": 1.5},
        "cache_build_seconds": 0.5,
        "memory": memory,
    }
    source = tmp_path / "streaming-20261203-120000.json"
    source.write_text(__import__("json").dumps(result))
    doc = "<!-- bench:streaming-table -->\nSTALE\n<!-- /bench:streaming-table -->\n"
    rendered = render_docs.render(doc, {"streaming": source})
    assert "| 11.0 s [10.0–12.0 s] | 1.00× (reference) |" in rendered
    assert "in memory (`in_memory=True`) | 4.0 s [3.0–5.0 s] | 2.50× [2.20–4.00×] |" in rendered
    assert "| streamed | 256 images | 900 MB | 1100 MB | 400 MB |" in rendered
    assert "4x larger against 1x: 1.10× (in memory: 1.40×)" in rendered and "STALE" not in rendered


def test_render_docs_check_reports_a_stale_doc(tmp_path):
    source = tmp_path / "peers-20261123-120000.json"
    source.write_text(__import__("json").dumps(_peers_result()))
    doc = tmp_path / "page.md"
    doc.write_text("<!-- bench:peers-summary -->old<!-- /bench:peers-summary -->\n")
    argv = ["--peers", str(source), str(doc)]
    assert render_docs.main([*argv, "--check"]) == 1
    assert "old" in doc.read_text()
    assert render_docs.main(argv) == 0 and render_docs.main([*argv, "--check"]) == 0


zoo = _load("zoo_defaults")


def _zoo_result() -> dict:
    def row(model, seed, accuracy, loss, lr=None, family=None):
        out = {"model": model, "seed": seed, "lr": lr, "lr_used": lr or 0.02}
        out.update(test_accuracy=accuracy, loss=loss, alerts=[], train_images=1000)
        return out | ({"family": family} if family else {})

    return {
        "task": {
            "train_images": 1000,
            "test_images": 500,
            "epochs": 3,
            "small_side": 8,
            "large_input_train_images": 300,
        },
        "seeds": [0, 1],
        "chance": 0.1,
        "jobs": 2,
        "seconds_as_seen": 600.0,
        "machine": {
            "cpu": "test CPU",
            "cpu_cores": 2,
            "torch_threads": 1,
            "device": "cpu",
            "torch": "2",
        },
        "families": {"lenet5": "lenet", "vgg11": "vgg", "network_bn": "network_bn"},
        "inputs": {"lenet5": "native", "vgg11": "small", "network_bn": "folder"},
        "defaults": [
            row("lenet5", 0, 0.70, [2.0, 1.0]),
            row("lenet5", 1, 0.68, [2.0, 1.1]),
            row("vgg11", 0, 0.50, [2.3, 1.5]),
            row("vgg11", 1, 0.12, [2.3, 2.3]),  # within 5 points of chance: did not learn
            row("network_bn", 0, 0.75, [1.4, 0.5]),
            row("network_bn", 1, 0.74, [1.4, 0.6]),
        ],
        "grid": [
            row("lenet5", 0, 0.72, [2.0, 0.9], lr=1e-2, family="lenet"),
            row("vgg11", 0, 0.60, [2.3, 1.2], lr=1e-3, family="vgg"),
            row("vgg11", 0, None, [], lr=2e-2, family="vgg") | {"diverged": "NaN at step 3"},
            # the grid point at network_bn's own recipe: its seed-0 defaults run, reused
            row("network_bn", 0, 0.75, [1.4, 0.5], lr=3e-4, family="network_bn")
            | {"defaults_run": True},
        ],
    }


def test_zoo_a_run_learns_above_chance_with_a_falling_loss():
    assert zoo.learned({"test_accuracy": 0.5, "loss": [2.3, 1.0]}, chance=0.1)
    assert not zoo.learned({"test_accuracy": 0.14, "loss": [2.3, 1.0]}, chance=0.1)
    assert not zoo.learned({"test_accuracy": 0.5, "loss": [2.3, 2.4]}, chance=0.1)
    assert not zoo.learned({"test_accuracy": None, "loss": []}, chance=0.1)
    assert not zoo.learned({"test_accuracy": 0.5, "loss": [2.3, float("nan")]}, chance=0.1)


def test_zoo_verdicts_hold_each_model_to_its_familys_best_grid_rate():
    summary = {line["model"]: line for line in zoo.verdicts(_zoo_result())}
    lenet = summary["lenet5"]
    assert lenet["min_accuracy"] == 0.68 and lenet["best_of_grid"] == 0.72
    assert lenet["share_of_best"] == round(0.69 / 0.72, 3) and lenet["holds"]
    vgg = summary["vgg11"]
    assert not vgg["learned_every_seed"] and not vgg["holds"] and vgg["best_of_grid"] == 0.60


def test_zoo_alert_outcomes_count_warned_runs_and_silent_failures():
    result = _zoo_result()
    result["recipes"] = {"lenet5": 0.02, "vgg11": 0.002}
    result["grid"][0]["alerts"] = [{"epoch": 1, "kind": "blow-up"}]  # lenet5 at 1e-2, ends well
    outcomes = zoo.alert_outcomes(result)
    assert outcomes["runs"] == 9  # 6 defaults and 3 grid runs: the reused point counted once
    assert outcomes["warned"] == 1 and outcomes["warned_defaults"] == 0
    assert outcomes["ended"][0]["share_of_best"] == 1.0 and not outcomes["ended"][0]["at_chance"]
    assert not outcomes["ended"][0]["above_recipe"]  # 1e-2 is below lenet5's 2e-2
    assert outcomes["unwarned_at_chance"] == 1  # vgg11 seed 1; the diverged run raised
    result["alert_outcomes"] = outcomes
    text = render_docs.render(
        "<!-- bench:zoo-alerts -->x<!-- /bench:zoo-alerts -->", {"zoo_defaults": _saved(result)}
    )
    assert "warned about 1 (blow-up: 1); 0 of them were grid runs at rates above" in text
    assert "0 were runs with the defaults. 0 of the warned runs" in text
    assert "were not warned about: 1." in text


def test_zoo_update_replaces_only_the_retrained_models_defaults():
    earlier = _zoo_result()
    earlier["recipes"] = {"lenet5": 0.02, "vgg11": 3e-4, "network_bn": 3e-4}
    retrained = [
        {"model": "network_bn", "seed": s, "lr": None, "lr_used": 1e-3, "test_accuracy": 0.8}
        for s in (0, 1)
    ]
    update = {
        "families": {"network_bn": "network_bn"},
        "inputs": {"network_bn": "folder"},
        "recipes": {"network_bn": 1e-3},
        "defaults": retrained,
        "grid": [dict(r) for r in earlier["grid"]],
        "machine": {"cpu": "other"},
        "seconds_as_seen": 60.0,
    }
    update["grid"] = [{k: v for k, v in r.items() if k != "defaults_run"} for r in update["grid"]]
    merged = zoo.merge_update(earlier, update, "zoo_defaults-20261202-120000.json")
    assert [(r["model"], r["seed"]) for r in merged["defaults"]] == [
        (m, s) for m in ("lenet5", "vgg11", "network_bn") for s in (0, 1)
    ]
    assert [r["test_accuracy"] for r in merged["defaults"] if r["model"] == "network_bn"] == [
        0.8,
        0.8,
    ]
    assert merged["recipes"]["network_bn"] == 1e-3 and merged["recipes"]["lenet5"] == 0.02
    assert merged["updated"]["models"] == ["network_bn"] and merged["machine"] == earlier["machine"]
    # the old seed-0 run at 3e-4 is now an ordinary grid point, listed and counted on its own
    assert not any(r.get("defaults_run") for r in merged["grid"])
    merged["summary"] = zoo.verdicts(merged)
    text = render_docs.render(
        "<!-- bench:zoo-summary -->x<!-- /bench:zoo-summary -->", {"zoo_defaults": _saved(merged)}
    )
    assert "after their recipe or initialisation changed, `network_bn` trained again" in text
    # A result naming itself as where it came from (a loop) is listed once, not followed forever.
    merged["updated"]["from"] = "zoo_defaults-20261203-120000.json"  # _saved's own name
    looped = render_docs.render(
        "<!-- bench:zoo-summary -->x<!-- /bench:zoo-summary -->", {"zoo_defaults": _saved(merged)}
    )
    assert "trained again" not in looped


def _saved(result: dict) -> Path:
    import json
    import tempfile

    path = Path(tempfile.mkdtemp()) / "zoo_defaults-20261203-120000.json"
    path.write_text(json.dumps(result))
    return path


def test_zoo_families_inputs_and_costs_follow_the_registry():
    assert zoo.recipe_family("vgg16_bn") == "vgg_bn" and zoo.recipe_family("vgg13") == "vgg"
    assert zoo.recipe_family("vgg19") == "vgg_deep"
    assert zoo.recipe_family("network_bn_v2") == "network_bn"
    assert zoo.recipe_family("resnet152") == "resnet"
    assert zoo.recipe_family("alexnet_original") == "alexnet_original"  # its own, larger input
    assert {zoo.recipe_family(n) for n in cnnzoo.models.list_models()} == set(zoo.REFERENCES)
    kinds = {
        n: zoo.input_kind(n)
        for n in ("lenet5", "cifar_cnn", "resnet18", "alexnet_original", "network_bn")
    }
    assert kinds == {
        "lenet5": "native",
        "cifar_cnn": "pad32",
        "resnet18": "small",
        "alexnet_original": "upsample",
        "network_bn": "folder",
    }
    assert zoo.job_cost("lenet5") == pytest.approx(416_520, rel=0.01)  # LeNet-5's MACs
    # the fixed large-input nets train on fewer images; every other model on the whole task
    assert zoo.train_images_of("network_bn", 3000) == zoo.LARGE_INPUT_TRAIN_IMAGES < 3000
    assert zoo.train_images_of("alexnet_original", 3000) == zoo.LARGE_INPUT_TRAIN_IMAGES
    assert zoo.train_images_of("resnet18", 3000) == zoo.train_images_of("lenet5", 3000) == 3000
    assert zoo.train_images_of("network_bn", 256) == 256  # never more than the task has


def test_zoo_every_recipe_lies_inside_its_familys_grid():
    for name in cnnzoo.models.list_models():
        reference = zoo.REFERENCES[zoo.recipe_family(name)]
        rates = zoo.grid_of(zoo.recipe_family(name))
        assert cnnzoo.models.info(reference).recipe.lr in rates, name
        # a family shares one recipe, so its reference's grid tests the rate each model trains at
        assert cnnzoo.models.info(name).recipe == cnnzoo.models.info(reference).recipe, name
    assert zoo.select(["resnet1*", "lenet5"]) == ["lenet5", "resnet18", "resnet101", "resnet152"]


def test_zoo_resized_images_keep_labels_and_measure_their_own_statistics():
    data = _dataset(4)
    small = zoo.resized(data, 16)
    assert small.images.shape == (4, 1, 16, 16) and small.images.dtype == torch.uint8
    assert torch.equal(small.labels, data.labels)
    assert small.mean[0] == pytest.approx(small.images.float().div(255).mean().item(), abs=1e-6)
    padded = zoo.resized(data, 32, pad=2)
    assert torch.equal(padded.images[:, :, 2:30, 2:30], data.images)


def test_render_docs_writes_the_zoo_tables_from_the_json(tmp_path):
    source = tmp_path / "zoo_defaults-20261203-120000.json"
    result = _zoo_result()
    result["summary"] = zoo.verdicts(result)
    source.write_text(__import__("json").dumps(result))
    doc = "<!-- bench:zoo-summary -->x<!-- /bench:zoo-summary -->\n"
    doc += "<!-- bench:zoo-runs -->x<!-- /bench:zoo-runs -->\n"
    doc += "<!-- bench:zoo-headline -->x<!-- /bench:zoo-headline -->\n"
    rendered = render_docs.render(doc, {"zoo_defaults": source})
    assert "| `vgg11` | 8×8, `small_input` | 0.02 | 0.120 | 0.310 | 0.600 (vgg11, 0.001) |" in (
        rendered
    )
    assert "| `network_bn` | 224×224 RGB folder, 300 images | 0.02 | 0.740 |" in rendered
    assert "| `network_bn` | grid |" not in rendered  # the reused point is listed once
    assert "| **no** |" in rendered and "| yes |" in rendered
    assert "| `vgg11` | grid | 0 | 0.02 | diverged | – | none |" in rendered
    assert "2 of 3 models learn on every seed and 2 reach 95%" in rendered
    assert render_docs.render(rendered, {"zoo_defaults": source}) == rendered


def test_zoo_a_stopped_run_keeps_its_finished_jobs_in_its_journal(tmp_path):
    jobs = [("lenet5", 0, 4, None, 3000), ("lenet5", 1, 4, None, 3000)]
    journal = tmp_path / "journal.jsonl"
    row = {"model": "lenet5", "seed": 1, "lr": None, "test_accuracy": 0.5}
    other = {"job": '["vgg11", 0, 4, null, 3000]', "row": {"model": "vgg11"}}  # not this run's
    journal.write_text(
        json.dumps({"job": json.dumps(list(jobs[1])), "row": row})
        + "\n"
        + json.dumps(other)
        + '\n{"job": "cut sho'  # the line a stop cut short
    )
    assert zoo.read_journal(journal, jobs) == {1: row}
    assert zoo.read_journal(tmp_path / "none.jsonl", jobs) == {}
    assert zoo.run_jobs(jobs[1:], 1, 64, journal) == [row]  # nothing left to train
