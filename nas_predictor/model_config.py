"""The predictor network's hyper-parameters (``model:`` of a config), torch-free so configs load fast."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Readouts that build a network's latency from each operator's costs (they need encoding.node_costs).
ROOFLINE_READOUTS = ("roofline", "roofline_sum", "grounded")


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: Literal["accuracy", "latency"] = "accuracy"
    input_dim: int = Field(128, ge=1)
    hidden: int = Field(512, ge=8)
    num_blocks: int = Field(6, ge=1)
    ffn_ratio: int = Field(4, ge=1)
    groups: int = Field(8, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    layer_scale_init: float = Field(1e-4, gt=0.0)
    static_dim: int = Field(40, ge=0)  # latency only: f_PE of the global scalars
    # Accuracy only: how many zero-cost proxies the model reads besides the cell (the batch's static
    # features, nas_predictor/proxy_features.py); an experiment config fills it in from encoding.proxies.
    # They are embedded (a linear layer and a ReLU) and joined to the fused graph vector before the head.
    proxy_dim: int = Field(0, ge=0)
    # narformer_v2 (this paper) or nnlp_gnn (the NNLQP baseline: GraphSAGE-style layers, latency only)
    architecture: Literal["narformer_v2", "nnlp_gnn"] = "narformer_v2"
    # Latency only: one output per device setting, sharing the trunk (a latency experiment with a list
    # of settings fills this in). 1 = the reference's single output, predictions of shape (B,).
    num_outputs: int = Field(1, ge=1)
    # How the last linear's z becomes a prediction: softplus(-z) (the reference), or exp(z) (ours for
    # latency): whole-network latencies span two orders of magnitude across families and devices,
    # and an exponential output makes the head additive in log latency, where a power law of FLOPs
    # and memory traffic is a straight line.
    output: Literal["softplus", "exp"] = "softplus"
    # Latency only, how the graph becomes a prediction. sum: the head reads the sum of the node
    # embeddings and the static features (the paper's). node_sum: the head runs on every node (its
    # embedding and the static features) and the prediction is the sum of the nodes' positive outputs,
    # so a network's latency is built as the sum of its operators' latencies; under an exp output the
    # sum readout has to learn log(sum of exps) instead (ours; see docs/deviations.md). op_sum: as
    # node_sum, but each node's head reads its own embedding alone, without the network's static
    # features: with them, a node's latency could scale with the whole network's FLOPs, and a network
    # of many small operators (GoogLeNet's branches) was over-predicted 2.4x when held out (docs/results.md,
    # "recipe pilots"). An operator's latency is a property of the operator and its neighbours.
    # roofline: op_sum with each node's latency built from its own costs, F * t_F + M * t_M + t_0,
    # where F and M are the node's FLOPs and memory traffic (read back from its node-cost token
    # columns) and the head predicts the positive times per unit t_F, t_M and the fixed t_0 from the
    # node's embedding. The head's output is bounded (the blocks L2-normalise every token), so under
    # op_sum an operator larger than any in training is capped near the largest seen (VGG-16 held
    # out: MAPE 0.79); here latency keeps growing in proportion to the work, as a roofline does.
    # roofline_sum: roofline plus one positive network-level term read from the summed node embeddings
    # and the static features, as the sum readout does: costs no single operator carries (launches,
    # synchronisation, a framework's fixed overhead) go there instead of being spread over the nodes.
    # grounded: roofline plus a fourth work term, the node's time from the device's per-operator latency
    # model (encoding.op_latency), times a positive factor the head predicts from the node's embedding:
    # a network is its operators' micro-benchmarked times, corrected for the context (fusion, cache
    # reuse) the graph shows. It starts as that sum (the factor at the training labels' mean ratio to it).
    readout: Literal["sum", "node_sum", "op_sum", "roofline", "roofline_sum", "grounded"] = "sum"
    # roofline readouts only: the token column of the first node-cost slot (a latency config fills it in
    # under encoding.node_costs)
    cost_offset: int = Field(0, ge=0)
    # grounded readout only: the token column of the op-latency slot (filled in under encoding.op_latency)
    op_latency_offset: int = Field(0, ge=0)
    # Latency only: in training, each node's op one-hot (the first op_slots token columns, which a
    # latency config fills in under encoding.op_groups) is zeroed with this probability, so that the
    # model learns to read a node from its group, attributes and costs alone, as it must for an op type
    # no training network had (the tokenizer encodes those by their group only).
    op_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    op_slots: int = Field(0, ge=0)
    # The token columns the first block reads (ascending, each < input_dim); None = all of them. An
    # online surrogate fit on one space's networks keeps the columns its training tokens use: the rest
    # are zero in every one of them, so their weights would never move from their random init, and
    # the first block, whose cost grows with its width squared, would spend most of a refit on them.
    input_columns: list[int] | None = None

    @model_validator(mode="after")
    def _node_sum_is_for_latency(self) -> "ModelConfig":
        if self.readout != "sum" and (self.task != "latency" or self.architecture != "narformer_v2"):
            raise ValueError(f"model.readout {self.readout!r} is for NAR-Former V2 latency models (task: latency)")
        if self.readout in ROOFLINE_READOUTS and not self.cost_offset:
            raise ValueError(f"model.readout {self.readout!r} needs encoding.node_costs (it reads each node's FLOPs "
                             "and memory traffic from its token; model.cost_offset names their column)")
        if self.readout == "grounded" and not self.op_latency_offset:
            raise ValueError("model.readout 'grounded' needs encoding.op_latency (it reads each node's per-operator "
                             "time from its token; model.op_latency_offset names the column)")
        if self.proxy_dim and (self.task != "accuracy" or self.architecture != "narformer_v2"):
            raise ValueError("model.proxy_dim (zero-cost proxies as inputs) is for NAR-Former V2 accuracy models")
        if self.input_columns is not None:
            cols = self.input_columns
            if not cols or cols != sorted(set(cols)) or cols[0] < 0 or cols[-1] >= self.input_dim:
                raise ValueError(f"model.input_columns must be ascending distinct token columns below input_dim "
                                 f"({self.input_dim}), got {len(cols)} columns")
            if self.architecture != "narformer_v2":
                raise ValueError("model.input_columns is for NAR-Former V2 models")
        if self.op_dropout > 0 and not self.op_slots:
            raise ValueError("model.op_dropout needs encoding.op_groups (a node whose op one-hot is dropped "
                             "is read from its op group)")
        return self
