import onnxruntime as ort
import pytest

from nas_predictor.latency import Measurer, ProviderUnavailableError, measure_onnx
from nas_predictor.latency.errors import MeasurementError
from nas_predictor.latency.providers import execution_providers, session_options


def test_cpu_session_settings_are_the_protocols():
    options = session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1
    assert options.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert execution_providers("cpu") == ["CPUExecutionProvider"]


@pytest.mark.parametrize("provider, ep", [("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")])
def test_gpu_provider_not_installed_is_a_clear_error(provider, ep, tiny_weight_free):
    if ep in ort.get_available_providers():
        pytest.skip(f"{ep} is installed here")
    with pytest.raises(ProviderUnavailableError) as err:
        Measurer(provider)
    message = str(err.value)
    assert ep in message and "CPUExecutionProvider" in message and "onnxruntime-gpu" in message
    with pytest.raises(ProviderUnavailableError):
        measure_onnx(tiny_weight_free, provider=provider)


def test_unknown_and_torch_cuda_providers_are_refused():
    with pytest.raises(MeasurementError, match="unknown provider 'npu'"):
        Measurer("npu")
    with pytest.raises(MeasurementError, match="measure_torch_cuda"):
        Measurer("torch-cuda")


def test_tensorrt_chain_falls_back_to_cuda_then_cpu(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    chain = execution_providers("tensorrt", device_id=1)
    assert [p if isinstance(p, str) else p[0] for p in chain] == \
        ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert chain[0][1] == {"device_id": 1}
