"""The per-operator latency model (nas_predictor.op_latency) and the op-latency token column."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from nas_predictor.errors import DataError
from nas_predictor.graph import ArchGraph
from nas_predictor.network_encoding import NetworkTokenizer, decode_op_latency
from nas_predictor.op_latency import OpLatencyModel, fit_op_latency, node_op_features

MS_PER_GFLOP = {"Conv": 20.0, "MatMul": 12.0, "Relu": 0.0, "Add": 0.0}
MS_PER_MELEM = {"Conv": 0.2, "MatMul": 0.3, "Relu": 0.9, "Add": 1.2}
OVERHEAD_MS = 0.004


def _op_graph(op: str, rng: np.random.Generator) -> tuple[ArchGraph, float]:
    """A one-operator graph (data input -> op) and a synthetic time: a roofline per op type."""
    c, hw = int(rng.integers(8, 257)), int(rng.choice([7, 14, 28, 56]))
    numel = c * hw * hw
    flops = numel * c * (9 if op == "Conv" else 1) if op in ("Conv", "MatMul") else float(numel)
    memory = 2 * numel
    attrs = [{"batched": 1}, {"flops": float(flops), "batched": 1, "memory_batched": memory, "memory_fixed": 0,
                              **({"kernel": [3, 3], "stride": [1, 1], "group": 1} if op == "Conv" else {})}]
    g = ArchGraph(("Input", op), ((0, 1),), attrs, ((1, c, hw, hw), (1, c, hw, hw)), {"batch_size": 1.0})
    ms = MS_PER_GFLOP[op] * flops / 1e9 + MS_PER_MELEM[op] * memory / 1e6 + OVERHEAD_MS
    return g, ms


def _data(n: int, seed: int = 0, ops=("Conv", "MatMul", "Relu", "Add")):
    rng = np.random.default_rng(seed)
    pairs = [_op_graph(ops[i % len(ops)], rng) for i in range(n)]
    return [g for g, _ in pairs], np.array([ms for _, ms in pairs])


def test_features_have_one_row_per_node_and_know_the_inputs():
    graphs, _ = _data(4)
    ops, x = node_op_features(graphs[0])
    assert ops == ["Input", "Conv"] and x.shape[0] == 2 and np.isfinite(x).all()
    assert x[1, 6] == 1.0  # one predecessor


def test_fit_learns_operator_times_and_inputs_cost_nothing():
    graphs, ms = _data(160)
    model = fit_op_latency(graphs, ms, epochs=300, seed=0)
    test_graphs, test_ms = _data(60, seed=1)
    pred = model.predict_ms(test_graphs, overhead=True)
    assert np.all(pred > 0) and np.mean(np.abs(pred / test_ms - 1)) < 0.15
    assert model.node_ms(test_graphs[0])[0] == 0.0  # the Input node
    assert model.info["operators"] == 160 and 0 < model.info["run_overhead_ms"] < 0.1


def test_state_round_trips_through_a_weights_only_checkpoint():
    graphs, ms = _data(40)
    model = fit_op_latency(graphs, ms, epochs=20)
    buffer = io.BytesIO()
    torch.save({"encoding": {"op_latency": model.state()}}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["encoding"]["op_latency"]
    again = OpLatencyModel.from_state(state)
    np.testing.assert_allclose(again.predict_ms(graphs), model.predict_ms(graphs), rtol=1e-6)


def test_rates_are_read_within_the_benchmarked_shapes_and_the_work_still_scales():
    graphs, ms = _data(40)
    model = fit_op_latency(graphs, ms, epochs=20)
    low, high = model.feature_range
    assert high[6] == 1.0  # every benchmarked node had one input
    # an Add of 40 inputs (DenseNet's concatenations run that long): its rates are read as for the widest
    # benchmarked shape, never past it; its work (FLOPs, memory) is its own
    base, _ = _op_graph("Add", np.random.default_rng(5))
    ops = ("Input",) * 40 + ("Add",)
    wide = ArchGraph(ops, tuple((i, 40) for i in range(40)), [base.attrs[0]] * 40 + [base.attrs[1]],
                     (base.shapes[0],) * 40 + (base.shapes[1],), {"batch_size": 1.0})
    assert node_op_features(wide)[1][40, 6] == 40.0
    state = model.state()
    del state["feature_range"]
    free = OpLatencyModel.from_state(state)  # a model saved before the clamp existed predicts as it did
    assert free.feature_range is None
    # unclamped, this fit reads a rate for 40 inputs off a line through "1 input" and predicts ~6x
    assert model.node_ms(wide)[40] == pytest.approx(model.node_ms(base)[1], rel=0.05)
    assert free.node_ms(wide)[40] > 2 * model.node_ms(base)[1]
    doubled = ArchGraph(base.ops, base.edges, [base.attrs[0], dict(base.attrs[1], flops=2 * base.attrs[1]["flops"],
                                                                   memory_batched=2 * base.attrs[1]["memory_batched"])],
                        base.shapes, base.scalars)
    assert model.node_ms(doubled)[1] > 1.5 * model.node_ms(base)[1]


def test_an_op_type_never_benchmarked_still_gets_a_finite_positive_time():
    graphs, ms = _data(40, ops=("Conv", "Relu"))
    model = fit_op_latency(graphs, ms, epochs=20)
    unseen, _ = _op_graph("MatMul", np.random.default_rng(3))
    node = model.node_ms(unseen)
    assert node[0] == 0.0 and np.isfinite(node[1]) and node[1] > 0


def test_bad_labels_and_corrupt_states_are_clear_errors():
    graphs, ms = _data(12)
    with pytest.raises(DataError, match="finite and positive"):
        fit_op_latency(graphs, np.where(np.arange(12) == 3, np.nan, ms))
    with pytest.raises(DataError, match="at least 10"):
        fit_op_latency(graphs[:5], ms[:5])
    state = fit_op_latency(graphs, ms, epochs=5).state()
    del state["weights"]
    with pytest.raises(DataError, match="corrupt per-operator latency model"):
        OpLatencyModel.from_state(state)


def test_token_column_decodes_back_to_the_node_times():
    graphs, ms = _data(40)
    model = fit_op_latency(graphs, ms, epochs=20)
    tok = NetworkTokenizer("extended", node_costs=True, op_latency=True)
    with pytest.raises(ValueError, match="no per-operator model"):
        tok.node_features(graphs[0])
    tok.attach_op_model(model)
    batch = tok.encode(graphs[:3])
    decoded = decode_op_latency(batch.tokens, tok.op_latency_offset)
    for i, g in enumerate(graphs[:3]):
        np.testing.assert_allclose(decoded[i, : g.num_nodes].numpy(), model.node_ms(g), rtol=1e-4, atol=1e-7)
    # a checkpoint's tokenizer config rebuilds the same column
    again = NetworkTokenizer(**{k: v for k, v in tok.config().items() if k != "kind"})
    np.testing.assert_array_equal(again.encode(graphs[:3]).tokens.numpy(), batch.tokens.numpy())
