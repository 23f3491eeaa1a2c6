"""cnnzoo.transforms gives, bit for bit, the tensors predict and classify feed the model."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import cnnzoo


def _colour_model(crop_pct=None):
    torch.manual_seed(0)
    model = cnnzoo.get_model("resnet18", num_classes=4, small_input=True).eval()
    model.pretrained_cfg = model.pretrained_cfg.replace(
        input_size=(3, 32, 32), mean=(0.4, 0.45, 0.5), std=(0.2, 0.25, 0.3), crop_pct=crop_pct
    )
    return model


def _inputs_seen(model, call, images):
    """The inputs ``call`` (predict or classify) hands the model, captured at its forward."""
    seen = []
    handle = model.register_forward_pre_hook(lambda _, args: seen.append(args[0].clone()))
    try:
        call(model, images)
    finally:
        handle.remove()
    return torch.cat(seen)


def _photo(tmp_path, size=(45, 37), mode="RGB"):
    generator = torch.Generator().manual_seed(1)
    array = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8)
    image = Image.fromarray(array.numpy()).convert(mode)
    path = tmp_path / "photo.png"
    image.save(path)
    return image, path


@pytest.mark.parametrize("crop_pct", [None, 0.875])
@pytest.mark.parametrize("call", [cnnzoo.predict, cnnzoo.classify], ids=["predict", "classify"])
def test_every_input_form_gives_the_tensor_predict_feeds(tmp_path, crop_pct, call):
    model = _colour_model(crop_pct)
    preprocess = cnnzoo.transforms(model)
    image, path = _photo(tmp_path)
    pixels = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    for form in (image, path, str(path), pixels):
        given = pixels[None] if isinstance(form, torch.Tensor) else [form]
        expected = _inputs_seen(model, call, given)[0]
        got = preprocess(form)
        assert got.dtype == torch.float32 and got.shape == (3, 32, 32)
        assert torch.equal(got, expected), type(form).__name__


def test_grey_files_become_the_colour_model_s_rgb(tmp_path):
    model = _colour_model()
    _, path = _photo(tmp_path, mode="L")
    assert torch.equal(
        cnnzoo.transforms(model)(path), _inputs_seen(model, cnnzoo.predict, [path])[0]
    )


def test_a_dataloader_over_the_transforms_feeds_the_model(tmp_path):
    model = _colour_model()
    _, path = _photo(tmp_path)
    preprocess = cnnzoo.transforms(model)
    loader = torch.utils.data.DataLoader(
        [path, path], batch_size=2, collate_fn=lambda b: torch.stack([preprocess(p) for p in b])
    )
    batch = next(iter(loader))
    with torch.inference_mode():
        torch.testing.assert_close(model(batch), cnnzoo.predict(model, [path, path]))


def test_train_adds_the_augmentations_fit_offers():
    model = _colour_model()
    preprocess = cnnzoo.transforms(model, train=True)
    pixels = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    torch.manual_seed(0)
    outputs = [preprocess(pixels) for _ in range(8)]
    assert all(o.shape == (3, 32, 32) for o in outputs)
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])
    names = [type(step).__name__ for step in preprocess.transforms]
    assert names[-2:] == ["RandomCrop", "RandomHorizontalFlip"]


def test_bad_input_and_models_without_contract_are_named():
    preprocess = cnnzoo.transforms(_colour_model())
    with pytest.raises(ValueError, match=r"uint8 pixels \(C, H, W\).*round\(\)"):
        preprocess(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="1 channel"):
        preprocess(torch.zeros(1, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match="got int"):
        preprocess(3)
    with pytest.raises(ValueError, match="no complete data contract"):
        cnnzoo.transforms(cnnzoo.get_model("lenet5"))
