"""The transfer benchmark: its task, the three starts it compares, its table, a smoke run."""

import importlib
import sys
from pathlib import Path

import torch

import cnnzoo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the scripts live in benchmarks/, outside the package
    sys.path.insert(0, str(ROOT))

transfer = importlib.import_module("benchmarks.transfer")
render_docs = importlib.import_module("benchmarks.render_docs")


def test_the_task_turns_unseen_images_and_labels_the_turn():
    train, test = transfer.turned_task(40, 20)
    assert train.classes == list(transfer.TURNS) and len(train) == 40 and len(test) == 20
    assert torch.equal(train.labels[:4], torch.arange(4))  # balanced: the turns take turns
    # an image labelled with k quarter turns is its source turned back by k gives the source
    source = transfer.load_dataset("fashion-mnist", "test")
    order = torch.randperm(len(source), generator=torch.Generator().manual_seed(transfer.TASK_SEED))
    for i in range(4):
        back = torch.rot90(train.images[i], -int(train.labels[i]), dims=(1, 2))
        assert torch.equal(back, source.images[order[i]])
    assert not set(order[:40].tolist()) & set(order[40:60].tolist())  # disjoint splits


def test_the_starts_differ_only_in_the_weights_and_the_rate():
    torch.manual_seed(0)
    scratch, none = transfer.build("mini_resnet", "random")
    tuned, same = transfer.build("mini_resnet", "fine-tuned")
    gentle, options = transfer.build("mini_resnet", "fine-tuned, lr/10")
    assert none == same == {} and options == {"lr": 1e-3}  # mini_resnet's recipe is 1e-2
    first = next(iter(tuned.state_dict()))
    assert torch.equal(tuned.state_dict()[first], gentle.state_dict()[first])
    assert not torch.equal(tuned.state_dict()[first], scratch.state_dict()[first])
    assert tuned(torch.zeros(1, 1, 28, 28)).shape == (1, 4)


def test_the_table(tmp_path):
    result = transfer.main(["--quick"])
    table = render_docs.transfer_table(result, tmp_path / "t.json")
    assert "| `lenet5` | fine-tuned, lr/10 |" in table and "which way up" in table


def test_a_grey_32_pixel_net_gets_a_grey_random_start_and_the_task_at_its_size():
    torch.manual_seed(0)
    scratch, _ = transfer.build("cifar_cnn", "random")
    tuned, _ = transfer.build("cifar_cnn", "fine-tuned")
    assert scratch.input_size == tuned.input_size == (1, 32, 32)
    train, _ = transfer.turned_task(8, 4)
    resized = transfer.at_size(train, scratch)
    assert resized.images.shape == (8, 1, 32, 32) and torch.equal(resized.labels, train.labels)
    assert transfer.at_size(train, cnnzoo.get_model("lenet5")) is train  # 28x28 stays as it is
