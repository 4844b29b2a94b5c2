"""Per-channel cost of a depthwise conv on onnxruntime CPU against its channel count: the measurement
behind the channel-alignment token flags (encoding.channel_alignment, nas_predictor/network_encoding.py).

    python benchmarks/depthwise_alignment.py    # writes benchmarks/results/depthwise_alignment.json
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, command_line, machine, save_results  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

CHANNELS = (32, 33, 36, 38, 40, 48, 55, 56, 64, 119, 120)
KERNELS = (3, 5, 7)


def depthwise_ms(channels: int, kernel: int, size: int = 112, repeats: int = 15) -> float:
    """Median ms of one depthwise conv (batch 1, size x size), one onnxruntime thread."""
    conv = torch.nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)
    x = torch.randn(1, channels, size, size)
    buf = io.BytesIO()
    torch.onnx.export(conv, x, buf, opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x.numpy()}
    for _ in range(3):
        sess.run(None, feed)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    torch.set_num_threads(1)
    rows = [{"kernel": k, "channels": c, "median_ms": (ms := depthwise_ms(c, k)), "us_per_channel": ms * 1e3 / c}
            for k in KERNELS for c in CHANNELS]
    for k in KERNELS:
        print(k, " ".join(f"{r['channels']}:{r['us_per_channel']:.0f}" for r in rows if r["kernel"] == k))
    save_results(RESULTS / "depthwise_alignment.json", {
        "benchmark": "depthwise_alignment", "command": command_line(), "machine": machine(),
        "onnxruntime": ort.__version__, "input": "1 x C x 112 x 112, batch 1, one thread, median of 15 runs",
        "rows": rows, "max_over_min_us_per_channel": float(np.max([r["us_per_channel"] for r in rows])
                                                          / np.min([r["us_per_channel"] for r in rows]))})


if __name__ == "__main__":
    main()
