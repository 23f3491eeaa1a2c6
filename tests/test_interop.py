"""Every registered model works with the tools of the PyTorch ecosystem.

One module-scoped fixture builds each model once, at a small input (``small_input=True`` where
the model has it, else its fixed size), and every tool then runs on it: ``torch.fx``,
torchvision's feature extraction, ``torch.jit.script``/``trace``, ``torch.export`` with a
dynamic batch, ONNX checked in onnxruntime and ``torch.compile`` (dynamo, no graph breaks). The
outputs must equal the eager ones. The last part checks the table in docs/interoperability.md.
"""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from cnnzoo.models import get, info, list_models
from cnnzoo.models.densenet import DenseNet
from cnnzoo.models.registry import lookup

ROOT = Path(__file__).resolve().parent.parent
BATCH = 2  # not 1: torch.export would specialise a batch of one


TOOLS = ("fx", "feature_extraction", "script", "trace", "export", "onnx", "compile", "features")


class Case(NamedTuple):
    name: str
    options: dict
    tools: tuple[str, ...] = TOOLS
    label: str = ""


def _options(name: str) -> dict:
    params = inspect.signature(lookup(name)[1].builder).parameters
    return {"small_input": True} if "small_input" in params else {}


# ONNX export and torch.compile cost seconds per model, so they run on one model of each family
# and kind of block; every other tool runs on every model.
# DenseNet-121 alone takes ~25 s to ONNX and ~12 s to compile (58 dense layers), so its family
# is sampled with a four-block DenseNet of two layers each: the same classes and code paths.
SAMPLED = {"onnx", "compile"}
SAMPLE = {
    "alexnet",
    "lenet5",
    "mini_inception",
    "mini_resnet",
    "cifar_cnn",
    "vgg11_bn",
    "resnet18",
    "googlenet",
}
SMALL_DENSENET = {"growth_rate": 8, "block_config": (2, 2, 2, 2), "num_init_features": 16}


def _case(name: str) -> Case:
    tools = TOOLS if name in SAMPLE else tuple(t for t in TOOLS if t not in SAMPLED)
    return Case(name, _options(name), tools)


CASES = [_case(name) for name in list_models()]
# The auxiliary heads change no forward, but TorchScript compiles every submodule.
CASES.append(Case("googlenet", {"small_input": True, "aux_logits": True}, ("script",), "aux"))
CASES.append(Case("densenet121", {"small_input": True}, tuple(SAMPLED), "small-config"))
BY_ID = {c.name + (f"-{c.label}" if c.label else ""): c for c in CASES}


def cases_for(tool: str) -> pytest.MarkDecorator:
    """Parametrize a test with the ids of the cases that run ``tool``, through ``built``."""
    return pytest.mark.parametrize(
        "built", [key for key, case in BY_ID.items() if tool in case.tools], indirect=True
    )


class Built(NamedTuple):
    case: Case
    model: nn.Module
    x: torch.Tensor
    expected: torch.Tensor
    exported: dict  # the torch.export program, shared with the ONNX test


@pytest.fixture(scope="module")
def built(request) -> Built:
    """The model in eval mode, an input batch and the eager output (pytest groups tests by it)."""
    case = BY_ID[request.param]
    torch.manual_seed(0)
    if case.label == "small-config":
        model = DenseNet(**SMALL_DENSENET, num_classes=5, **case.options).eval()
    else:
        model = get(case.name, num_classes=5, **case.options).eval()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, *model.input_size, generator=generator)
    with torch.no_grad():
        expected = model(x)
    return Built(case, model, x, expected, {})


def _other_batch(built: Built, size: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(size, *built.model.input_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return x, built.model(x)


# -- the tools ------------------------------------------------------------------------------------
@cases_for("fx")
def test_fx_symbolic_trace(built):
    graph = torch.fx.symbolic_trace(built.model)
    with torch.no_grad():
        torch.testing.assert_close(graph(built.x), built.expected)


@cases_for("feature_extraction")
def test_torchvision_feature_extraction(built):
    model = built.model
    train_nodes, eval_nodes = get_graph_node_names(model)
    stages = model.feature_info.module_name(list(range(len(model.feature_info))))
    for nodes_of_a_mode in (train_nodes, eval_nodes):  # a module's name stands for its output
        for stage in stages:
            assert any(n == stage or n.startswith(stage + ".") for n in nodes_of_a_mode), stage
    nodes = {name: f"stage{i}" for i, name in enumerate(stages)}
    nodes[model.classifier_path] = "logits"
    extractor = create_feature_extractor(model, return_nodes=nodes)
    assert not model.training  # the tracing in both modes left it as it was
    with torch.no_grad():
        out = extractor(built.x)
        torch.testing.assert_close(out["logits"], built.expected)
        if stages:
            final, intermediates = model.forward_intermediates(built.x)
            for i, tensor in enumerate(intermediates):
                torch.testing.assert_close(out[f"stage{i}"], tensor)
            torch.testing.assert_close(final, model.forward_features(built.x))


@cases_for("script")
def test_jit_script(built):
    with warnings.catch_warnings():
        # torch 2.15 deprecates TorchScript with a FutureWarning; nothing else may be raised
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", r".*torch\.jit\.script.*deprecated", FutureWarning)
        scripted = torch.jit.script(built.model)
    with torch.no_grad():
        torch.testing.assert_close(scripted(built.x), built.expected)
        x, expected = _other_batch(built)
        torch.testing.assert_close(scripted(x), expected)


@cases_for("trace")
def test_jit_trace_without_warnings(built):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traced = torch.jit.trace(built.model, built.x)
    unexpected = [w for w in caught if "deprecated" not in str(w.message)]
    assert not unexpected, [f"{w.category.__name__}: {w.message}" for w in unexpected]
    with torch.no_grad():
        torch.testing.assert_close(traced(built.x), built.expected)


def _export(built: Built) -> torch.export.ExportedProgram:
    if "program" not in built.exported:
        batch = torch.export.Dim("batch", min=1, max=64)
        dynamic = ({0: batch},)
        built.exported["program"] = torch.export.export(
            built.model, (built.x,), dynamic_shapes=dynamic
        )
    return built.exported["program"]


@cases_for("export")
def test_export_with_dynamic_batch(built):
    module = _export(built).module()
    with torch.no_grad():
        torch.testing.assert_close(module(built.x), built.expected)
        x, expected = _other_batch(built)
        torch.testing.assert_close(module(x), expected)


@cases_for("onnx")
def test_onnx_matches_onnxruntime(built):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's progress notes
        # from the program exported with a dynamic batch (torch.onnx.export(model, ...) does
        # the same export itself)
        program = torch.onnx.export(_export(built), dynamo=True, verbose=False)
    session = ort.InferenceSession(
        program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    x, expected = _other_batch(built)
    for inputs, reference in ((built.x, built.expected), (x, expected)):
        (out,) = session.run(None, {input_name: inputs.numpy()})
        torch.testing.assert_close(torch.from_numpy(out), reference, atol=1e-4, rtol=1e-4)


@cases_for("compile")
def test_torch_compile_has_no_graph_break(built):
    # The "eager" backend runs dynamo's tracing alone (no C++ compiler needed); fullgraph=True
    # fails on any graph break, which an input check left in the graph would cause.
    torch._dynamo.reset()
    compiled = torch.compile(built.model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(built.x), built.expected)


@cases_for("fx")
def test_eager_checks_still_guard_the_input(built):
    model = built.model
    with pytest.raises(TypeError, match=r"floating-point images.*x\.float\(\)"):
        model((built.x * 100).to(torch.uint8))
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        model(built.x[0])


# -- backbones ------------------------------------------------------------------------------------
# Feature map sides at the fixture's input (32x32 small input; alexnet_original's 227x227) and
# channels, per family. AlexNet's unpadded 3x3 stride-2 pools make its strides nominal.
STAGES = {
    "resnet": (
        [32, 32, 16, 8, 4],
        {"resnet18": [64, 64, 128, 256, 512], "resnet50": [64, 256, 512, 1024, 2048]},
    ),
    "vgg": ([32, 16, 8, 4, 4], {"vgg16": [64, 128, 256, 512, 512]}),
    "densenet": ([32, 32, 16, 8, 4], {"densenet121": [64, 256, 512, 1024, 1024]}),
    "googlenet": ([32, 32, 32, 16, 8], {"googlenet": [64, 192, 480, 832, 1024]}),
    "alexnet": ([32, 32, 15], {"alexnet": [64, 192, 256]}),
    "alexnet_original": ([55, 27, 13], {"alexnet_original": [96, 256, 256]}),
}


def _stage_family(name: str) -> str | None:
    family = info(name).family
    key = name if name in STAGES else family
    return key if key in STAGES else None


@cases_for("features")
def test_features_only_shapes(built):
    from cnnzoo.models.features import FeatureListNet

    model, name = built.model, built.case.name
    key = _stage_family(name)
    if key is None:
        assert len(model.feature_info) == 0
        with pytest.raises(ValueError, match=rf"{name} has no stages for features_only"):
            FeatureListNet(model)
        return
    sides, channels = STAGES[key]
    backbone = FeatureListNet(model).eval()
    assert set(backbone.state_dict()) < set(model.state_dict())  # the trunk's names, no head
    with torch.no_grad():
        maps = backbone(built.x)
        _, intermediates = model.forward_intermediates(built.x)
    assert [m.shape[1] for m in maps] == backbone.feature_info.channels()
    assert [m.shape[-1] for m in maps] == [m.shape[-2] for m in maps] == sides
    assert all(m.shape[0] == BATCH for m in maps)
    if name in channels:
        assert backbone.feature_info.channels() == channels[name]
    for ours, reference in zip(maps, intermediates, strict=True):
        torch.testing.assert_close(ours, reference)


# -- the table in docs/interoperability.md --------------------------------------------------------
COLUMNS = {
    "`torch.fx`": "fx",
    "feature extraction": "feature_extraction",
    "`jit.script`": "script",
    "`jit.trace`": "trace",
    "`torch.export`": "export",
    "ONNX": "onnx",
    "`torch.compile`": "compile",
    "`features_only`": "features",
}


def _expected_cell(family: str, tool: str) -> str:
    """What the table must say: what the cases above test for the family's models."""
    members = [c for c in CASES[: len(list_models())] if info(c.name).family == family]
    if tool == "features" and not any(_stage_family(c.name) for c in members):
        return "—"
    if all(tool in c.tools for c in members):
        return "✓"
    if family == "densenet":
        assert any(c.label == "small-config" and tool in c.tools for c in CASES)
        return "✓²"
    assert any(tool in c.tools for c in members), f"{tool} is not tested on any {family} model"
    return "✓¹"


def test_the_interoperability_table_says_what_is_tested():
    text = (ROOT / "docs" / "interoperability.md").read_text(encoding="utf-8")
    block = text.split("<!-- interop-table:start -->")[1].split("<!-- interop-table:end -->")[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in block.strip().splitlines()
        if not re.fullmatch(r"\|[-|]+\|", line.strip())
    ]
    header, body = rows[0], rows[1:]
    assert header[0] == "family"
    assert [COLUMNS[h] for h in header[1:]] == list(TOOLS)
    families = sorted({info(name).family for name in list_models()})
    assert [row[0] for row in body] == families
    for row in body:
        for tool, cell in zip(TOOLS, row[1:], strict=True):
            assert cell == _expected_cell(row[0], tool), (row[0], tool)
