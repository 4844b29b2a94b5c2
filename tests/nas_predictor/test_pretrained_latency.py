"""The shipped latency predictors: listed, verified, and close to HELP's measured latencies.

The networks are exported fresh from our builders (an empty cache folder), so this also checks that
the shipped weights still match what the builders produce today.
"""

import numpy as np
import pytest
import torch

from nas_predictor import list_pretrained, load_pretrained
from nas_predictor.data.latency_graphs import network_graphs
from nas_predictor.data.latency_tables import load_help_latency
from nas_predictor.metrics import mape

# issue 3: two GPUs, one CPU and one phone, all views of one multi-device file
REQUIRED = ("latency-titan_rtx_1", "latency-2080ti_1", "latency-gold_6226", "latency-samsung_a50")
# the batch-32 file (roofline_sum readout): its views need networks exported at batch 32
BATCH_32 = ("latency-titan_rtx_32", "latency-2080ti_32", "latency-titanxp_32")


def test_required_latency_predictors_are_listed():
    names = list_pretrained()
    for name in REQUIRED + BATCH_32 + ("latency-help-b1", "latency-help-b32"):
        assert name in names


@pytest.fixture(scope="module")
def nb201_networks(data_dir, tmp_path_factory):
    """12 NB201 networks spread over HELP's table, exported at batch 1 and at batch 32 (lazily, once)."""
    table = load_help_latency("nasbench201", "titan_rtx_1", data_dir)
    # some were training networks, which is fine for a sanity bound
    pick = np.linspace(0, len(table) - 1, 12).astype(int)
    archs = [table.archs[i] for i in pick]
    cache = tmp_path_factory.mktemp("cache")
    graphs: dict[int, list] = {}

    def at_batch(batch: int):
        if batch not in graphs:
            graphs[batch] = network_graphs("nasbench201", archs, batch, cache, workers=1, progress=False)
        return pick, graphs[batch]

    return at_batch


@pytest.mark.parametrize("name", REQUIRED + BATCH_32)
def test_shipped_latency_predictor_is_close_to_measured_latencies(name, nb201_networks, data_dir):
    pick, graphs = nb201_networks(32 if name.endswith("_32") else 1)
    predictor = load_pretrained(name)
    setting = name.removeprefix("latency-")
    assert predictor.default_setting == setting
    truth = load_help_latency("nasbench201", setting, data_dir).latency_ms[pick]
    with torch.no_grad():
        pred = predictor.predict_latency(graphs)
    assert pred.shape == (12,) and np.isfinite(pred).all() and (pred > 0).all()
    # the shipped predictor's test MAPE is 0.02-0.04 on every setting; 15 % on average means it is broken
    assert mape(truth, pred) < 0.15, (name, mape(truth, pred))


# -- the training domain each shipped latency file carries (issue 26) ---------------------------------
import copy  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import warnings  # noqa: E402

import onnx  # noqa: E402
from torch import nn  # noqa: E402

from nas_predictor.latency_domain import (  # noqa: E402
    DOMAIN_KEY,
    FallbackLine,
    assess_latency,
    graph_depth,
)
from nas_predictor.onnx import onnx_to_graph  # noqa: E402
from nas_predictor.predictor import PRETRAINED_DIR  # noqa: E402

# sha256 over the member tensors (name, dtype, shape, bytes) of the files as shipped before the domain
# summaries were added (commit 5600cb3): adding them must not change a single weight
WEIGHTS_SHA256 = {"latency-help-b1": "bfe8e6720394312e05b89ce396fe4b0c582609fda4997fee981d3e48638f3604",
                  "latency-help-b32": "17e8038e42c302e86d907d7c0827d98e030db6382910b6b78e846a9e83e89a32"}
LATENCY_FILES = tuple(WEIGHTS_SHA256)


def weights_digest(path) -> str:
    digest = hashlib.sha256()
    for member in torch.load(path, map_location="cpu", weights_only=True)["members"]:
        for key in sorted(member):
            tensor = member[key]
            digest.update(key.encode())
            digest.update(str(tensor.dtype).encode())
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def conv_stack(blocks: int, size: int = 32, channels: int = 16, tail: nn.Module | None = None) -> bytes:
    """A stem and ``blocks`` Conv-BN-ReLU blocks, exported as the training networks were (legacy exporter,
    opset 17, weight-free, BatchNorm unfused)."""
    layers = [nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
    for _ in range(blocks):
        layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
    if tail is not None:
        layers.append(tail)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(nn.Sequential(*layers).eval(), (torch.zeros(1, 3, size, size),), buffer, dynamo=False,
                          opset_version=17, export_params=False, do_constant_folding=False)
    return buffer.getvalue()


def deeper(exported: bytes, extra: int) -> bytes:
    """``exported`` with its last Conv-BN-ReLU block repeated ``extra`` more times in the ONNX graph: the
    graph torch would export for that many blocks (checked below), without tracing thousands of layers."""
    model = onnx.load_from_string(exported)
    block = list(model.graph.node[-3:])
    assert [n.op_type for n in block] == ["Conv", "BatchNormalization", "Relu"]
    previous = block[-1].output[0]
    for i in range(extra):
        renamed: dict[str, str] = {}
        for node in block:
            new = copy.deepcopy(node)
            new.name = f"{node.name}.copy{i}"
            new.input[0] = previous if node is block[0] else renamed[node.input[0]]
            for j, name in enumerate(node.output):
                renamed[name] = new.output[j] = f"{name}.copy{i}"
            model.graph.node.append(new)
        previous = renamed[block[-1].output[0]]
    model.graph.output[0].name = previous
    return model.SerializeToString()


def stack_graph(blocks: int, batch: int, size: int = 32, channels: int = 16):
    return onnx_to_graph(deeper(conv_stack(1, size, channels), blocks - 1), batch_size=batch)


def test_a_deepened_graph_is_the_graph_of_the_deeper_export():
    exported, built = onnx_to_graph(conv_stack(12, size=8)), stack_graph(12, 1, size=8)
    assert (built.ops, built.edges, built.scalars) == (exported.ops, exported.edges, exported.scalars)


@pytest.mark.parametrize("name", LATENCY_FILES)
def test_shipped_latency_files_carry_their_training_domain_and_the_same_weights(name):
    predictor = load_pretrained(name)  # checks the manifest's sha256 of the rewritten file
    assert weights_digest(PRETRAINED_DIR / f"{name}.pt") == WEIGHTS_SHA256[name]
    domain = predictor.meta[DOMAIN_KEY]
    assert domain["source"].startswith("training split of nasbench201, fbnet, ofa_mbv3 (in_domain, split_seed 1")
    assert set(domain["settings"]) == set(predictor.settings)
    batch = 32 if name.endswith("b32") else 1
    for setting, entry in domain["settings"].items():
        assert entry["num_graphs"] >= 1000 and entry["batch_sizes"] == [batch]
        assert {"Conv", "BatchNormalization", "Relu", "Add", "Gemm"} <= set(entry["op_types"])
        for low, high in entry["ranges"].values():
            assert 0 < low < high
        line = FallbackLine.from_dict(entry["fallback"])
        assert line.intercept + sum(line.coefficients) > 0
        assert 0 < entry["fallback_train_mape"] < 1.0


def test_training_family_networks_are_in_distribution(nb201_networks):
    pick, graphs = nb201_networks(1)
    predictor = load_pretrained("latency-help-b1")
    for setting in predictor.settings:
        for estimate in assess_latency(predictor, graphs, setting):
            assert estimate.in_distribution is True, (setting, estimate.reasons)
            assert estimate.predicted_ms == estimate.model_ms


@pytest.mark.parametrize("name", LATENCY_FILES)
def test_stacked_blocks_scale_linearly_over_the_training_depths_and_fall_back_beyond(name):
    predictor = load_pretrained(name)
    batch = 32 if name.endswith("b32") else 1
    graphs: dict[int, object] = {}
    for setting in predictor.settings:
        low, high = predictor.meta[DOMAIN_KEY]["settings"][setting]["ranges"]["depth"]
        # depth = Input + stem (3 nodes) + 3 per block
        inside = sorted({int(round((d - 4) / 3)) for d in np.linspace(low, high, 6)})
        for n in inside:
            graphs.setdefault(n, stack_graph(n, batch))
        pred = predictor.predict_latency([graphs[n] for n in inside], setting)
        slope, intercept = np.polyfit(np.array(inside, dtype=float), pred, 1)
        assert slope > 0
        assert np.abs(pred / (intercept + slope * np.array(inside)) - 1).max() <= 0.20, (setting, pred)
        # 10x deeper than the deepest training network: flagged, and the fallback line is reported
        deep_blocks = int(round((10 * high - 4) / 3))
        deep = graphs.setdefault(deep_blocks, stack_graph(deep_blocks, batch))
        assert graph_depth(deep) >= 10 * high - 2
        [estimate] = assess_latency(predictor, [deep], setting)
        assert estimate.in_distribution is False and estimate.source == "fallback"
        assert any(r.startswith(f"depth {graph_depth(deep)} far outside training range") for r in estimate.reasons)
        assert estimate.predicted_ms == estimate.fallback_ms
        # what is reported grows like the work: about 10x the deepest trained stack, never millions of ms
        assert estimate.predicted_ms < 30 * pred[-1], (setting, estimate.predicted_ms, pred[-1])


def test_the_issue_graph_of_5400_tiny_layers_is_flagged_not_hours():
    # issue 26: 5,400 nodes of tiny layers (16.6 MFLOPs) were predicted at 11,108,941 ms
    graph = stack_graph(1800, 1, size=4, channels=8)
    assert graph.num_nodes == 5404 and graph.scalars["flops"] < 40e6
    predictor = load_pretrained("latency-help-b1")
    for setting in predictor.settings:
        [estimate] = assess_latency(predictor, [graph], setting)
        assert estimate.in_distribution is False and estimate.source == "fallback"
        assert estimate.reasons[0].startswith("nodes 5404 far outside training range")
        assert estimate.predicted_ms < 1000.0, (setting, estimate)


@pytest.mark.parametrize("name", LATENCY_FILES)
def test_an_unseen_op_is_flagged_by_the_shipped_predictors(name):
    predictor = load_pretrained(name)
    batch = 32 if name.endswith("b32") else 1
    graph = onnx_to_graph(conv_stack(40, tail=nn.Softmax(dim=1)), batch_size=batch)
    for setting in predictor.settings:
        [estimate] = assess_latency(predictor, [graph], setting)
        assert estimate.in_distribution is False
        assert "op types never seen in training: Softmax x1" in estimate.reasons
