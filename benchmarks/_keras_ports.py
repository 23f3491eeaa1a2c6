"""Keras 3 versions of the benchmarked nets, with the PyTorch model's initial weights copied in.

Keras must be imported with ``KERAS_BACKEND=torch`` set (the caller's job: the environment
variable is read once, at Keras's import). The models are written the way a Keras user writes
them: the Keras default data format (channels-last, ``(N, H, W, C)`` inputs), ``Conv2D`` /
``Dense`` layers. The copy transposes each kernel to Keras's layout, and the first ``Dense``
after a ``Flatten`` gets its rows permuted, since Keras flattens ``(H, W, C)`` where PyTorch
flattens ``(C, H, W)``. :func:`same_function` checks that both compute the same logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


def _conv_kernel(conv: nn.Conv2d) -> list[np.ndarray]:
    kernel = conv.weight.detach().permute(2, 3, 1, 0).numpy()  # (out,in,kh,kw) -> (kh,kw,in,out)
    return [kernel, conv.bias.detach().numpy()]


def _dense(linear: nn.Linear, flattened_chw: tuple[int, int, int] | None = None) -> list:
    weight = linear.weight.detach()  # (out, in)
    if flattened_chw is not None:
        channels, height, width = flattened_chw
        weight = (
            weight.view(-1, channels, height, width).permute(0, 2, 3, 1).reshape(len(weight), -1)
        )
    return [weight.t().contiguous().numpy(), linear.bias.detach().numpy()]


def lenet5(model: nn.Module) -> Any:
    """LeNet-5 (sigmoid convolutions, average pooling) with ``model``'s weights."""
    import keras
    from keras import layers

    net = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(6, 5, padding="same", activation="sigmoid", name="c1"),
            layers.AveragePooling2D(2),
            layers.Conv2D(16, 5, activation="sigmoid", name="c3"),
            layers.AveragePooling2D(2),
            layers.Flatten(),
            layers.Dense(120, activation="sigmoid", name="f5"),
            layers.Dense(84, activation="sigmoid", name="f6"),
            layers.Dense(10, name="f7"),
        ]
    )
    net.get_layer("c1").set_weights(_conv_kernel(model.c1))
    net.get_layer("c3").set_weights(_conv_kernel(model.c3))
    net.get_layer("f5").set_weights(_dense(model.f5, (16, 5, 5)))
    net.get_layer("f6").set_weights(_dense(model.f6))
    net.get_layer("f7").set_weights(_dense(model.f7))
    return net


def mini_resnet(model: nn.Module) -> Any:
    """The advanced-CNN tutorial's residual net (two residual blocks) with ``model``'s weights."""
    import keras
    from keras import layers

    copies: list[tuple[str, list]] = []

    def conv(x: Any, module: Any, name: str) -> Any:
        inner = module.conv if hasattr(module, "conv") else module  # ConvBNAct wraps a Conv2d
        copies.append((name, _conv_kernel(inner)))
        return layers.Conv2D(inner.out_channels, 3, padding="same", name=name)(x)

    def block(x: Any, torch_block: Any, name: str) -> Any:
        y = layers.ReLU()(conv(x, torch_block.conv1, f"{name}_conv1"))
        y = conv(y, torch_block.conv2, f"{name}_conv2")
        shortcut = x
        if not isinstance(torch_block.shortcut, nn.Identity):
            shortcut = conv(x, torch_block.shortcut, f"{name}_shortcut")
        return layers.ReLU()(layers.Add()([shortcut, y]))

    inputs = keras.Input((28, 28, 1))
    x = block(inputs, model.features.block1, "block1")
    x = layers.ReLU()(layers.MaxPooling2D(2)(x))
    x = block(x, model.features.block2, "block2")
    x = layers.ReLU()(layers.MaxPooling2D(2)(x))
    outputs = layers.Dense(10, name="fc")(layers.Flatten()(x))
    net = keras.Model(inputs, outputs)
    for name, weights in copies:
        net.get_layer(name).set_weights(weights)
    net.get_layer("fc").set_weights(_dense(model.fc, (20, 7, 7)))
    return net


def resnet18(model: nn.Module) -> Any:
    """ResNet-18 with the small-image stem (``small_input=True``) and ``model``'s weights.

    Stride-2 convolutions pad explicitly (``ZeroPadding2D`` then ``"valid"``): Keras's "same"
    pads only after the input at stride 2, PyTorch pads both sides. BatchNorm gets PyTorch's
    epsilon and momentum (Keras counts momentum the other way round) and running statistics.
    """
    import keras
    from keras import layers

    if not isinstance(model.maxpool, nn.Identity) or model.conv1.stride != (1, 1):
        raise ValueError("the Keras resnet18 port is the small_input=True variant only")
    copies: list[tuple[str, list]] = []

    def conv(x: Any, module: nn.Conv2d, name: str) -> Any:
        copies.append((name, [module.weight.detach().permute(2, 3, 1, 0).numpy()]))
        stride, pad = module.stride[0], module.padding[0]
        if pad and stride > 1:
            x = layers.ZeroPadding2D(pad)(x)
        padding = "same" if pad and stride == 1 else "valid"
        return layers.Conv2D(
            module.out_channels, module.kernel_size, stride, padding, use_bias=False, name=name
        )(x)

    def norm(x: Any, module: nn.BatchNorm2d, name: str) -> Any:
        copies.append(
            (
                name,
                [
                    t.detach().numpy()
                    for t in (module.weight, module.bias, module.running_mean, module.running_var)
                ],
            )
        )
        return layers.BatchNormalization(
            momentum=1 - module.momentum, epsilon=module.eps, name=name
        )(x)

    inputs = keras.Input((28, 28, model.in_channels))
    x = layers.ReLU()(norm(conv(inputs, model.conv1, "conv1"), model.bn1, "bn1"))
    for stage in range(1, 5):
        for index, block in enumerate(getattr(model, f"layer{stage}")):
            name = f"layer{stage}_{index}"
            y = layers.ReLU()(norm(conv(x, block.conv1, f"{name}_conv1"), block.bn1, f"{name}_bn1"))
            y = norm(conv(y, block.conv2, f"{name}_conv2"), block.bn2, f"{name}_bn2")
            if block.downsample is not None:
                down_conv, down_norm = block.downsample
                x = norm(conv(x, down_conv, f"{name}_down"), down_norm, f"{name}_down_bn")
            x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(model.fc.out_features, name="fc")(x)
    net = keras.Model(inputs, outputs)
    for name, weights in copies:
        net.get_layer(name).set_weights(weights)
    net.get_layer("fc").set_weights(_dense(model.fc))
    return net


PORTS = {"lenet5": lenet5, "mini_resnet": mini_resnet, "resnet18": resnet18}


def port(name: str, model: nn.Module) -> Any:
    """The Keras twin of the registered model ``name``, with ``model``'s weights.

    Raises:
        ValueError: No Keras port of ``name`` here.
    """
    if name not in PORTS:
        raise ValueError(f"no Keras port of {name!r}; the ports are {sorted(PORTS)}")
    return PORTS[name](model)


def same_function(model: nn.Module, net: Any, images: torch.Tensor) -> bool:
    """Whether the Keras twin gives ``model``'s logits on ``images`` (N, C, H, W)."""
    model.eval()
    with torch.no_grad():
        expected = model(images)
        got = net(images.permute(0, 2, 3, 1).contiguous(), training=False)
    got = torch.as_tensor(np.asarray(got.detach().cpu()) if hasattr(got, "detach") else got)
    return bool(torch.allclose(expected, got.to(expected.dtype), atol=1e-4, rtol=1e-4))
