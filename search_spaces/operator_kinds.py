"""The operator kinds of the micro-benchmark set (search_spaces.operators draws them), in a module that imports
nothing heavy, so ``nas-predictor dataset --help`` lists them without importing onnx."""

from __future__ import annotations

# Append, never reorder: a kind's index seeds its generator.
KINDS: tuple[str, ...] = ("conv", "conv_grouped", "conv_depthwise", "gemm", "linear", "matmul_batched", "layernorm",
                          "groupnorm", "softmax", "elementwise", "activation", "pooling", "resize", "concat", "split",
                          "channel_shuffle", "transpose", "attention", "batchnorm")
