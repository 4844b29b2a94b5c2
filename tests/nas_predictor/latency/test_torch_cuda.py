import pytest
import torch

from nas_predictor.latency import ProviderUnavailableError, measure_torch_cuda
from nas_predictor.latency.errors import MeasurementError
from nas_predictor.latency.torch_cuda import check_arguments

from .conftest import TinyNet


def test_arguments_are_checked_before_anything_runs():
    assert check_arguments((1, 3, 32, 32), None, "eager", True) == (1, 3, 32, 32)
    assert check_arguments([1, 3, 32, 32], 8, "graph", True) == (8, 3, 32, 32)
    with pytest.raises(MeasurementError, match="input_shape"):
        check_arguments((1, 0, 32), None, "eager", True)
    with pytest.raises(MeasurementError, match="batch"):
        check_arguments((1, 3), 0, "eager", True)
    with pytest.raises(MeasurementError, match="mode"):
        check_arguments((1, 3), None, "fast", True)
    with pytest.raises(MeasurementError, match="cuda_graphs=True"):
        check_arguments((1, 3), None, "graph", False)
    with pytest.raises(MeasurementError, match="input_shape"):  # validated even on a CPU machine
        measure_torch_cuda(TinyNet(), (1, -3, 16, 16))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_without_cuda_is_a_clear_error():
    with pytest.raises(ProviderUnavailableError, match="needs a CUDA GPU") as err:
        measure_torch_cuda(TinyNet(), (1, 3, 16, 16))
    assert torch.__version__ in str(err.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_label_eager_and_graph():
    label = measure_torch_cuda(TinyNet(), (1, 3, 16, 16), batch=4, mode="graph")
    assert label.provider == "torch-cuda" and label.estimator == "median-cuda-graph" and label.batch_size == 4
    assert label.robust.eager_ms > 0 and label.robust.cuda_graph_ms == label.label_ms > 0
