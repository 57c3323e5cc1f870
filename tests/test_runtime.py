"""The model runtime: provider choice (all cases, by injecting what a machine offers), what
actually runs here, micro-batching, the torch reference, and the real GPU runs where a GPU exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detector_fixtures import hand_weights  # noqa: F401 - fixture

from inscene.engine.errors import InputError
from inscene.models.runtime import Environment, ModelIO, RuntimeConfig, choose, load_model, probe
from inscene.models.runtime.providers import CPU_EP, CUDA_EP, TRT_EP

ORT_CPU = ("AzureExecutionProvider", CPU_EP)
ORT_GPU = (TRT_EP, CUDA_EP, CPU_EP)  # what onnxruntime-gpu lists, GPU or not
IO = ModelIO("input", (-1, 224, 224, 3), 4, Path("/cache/trt"), fp16=True)


# -- the choice, for every kind of machine ----------------------------------------------

def test_this_machine_has_no_gpu_and_gets_the_cpu_provider():
    env = probe()
    if env.gpus:
        pytest.skip(f"this machine has {env.gpus} NVIDIA GPU(s); the CPU case is covered by the injected ones")
    c = choose(env)
    assert c.backend == "onnxruntime" and c.providers == ((CPU_EP, {}),)
    assert c.label == "onnxruntime:CPUExecutionProvider"
    assert "no NVIDIA GPU" in c.reason


def test_gpu_with_onnxruntime_gpu_prefers_the_tensorrt_ep_with_an_engine_cache():
    c = choose(Environment(ORT_GPU, gpus=1), "auto", IO)
    assert [p for p, _ in c.providers] == [TRT_EP, CUDA_EP, CPU_EP]
    opts = c.providers[0][1]
    assert opts["trt_engine_cache_enable"] is True and opts["trt_engine_cache_path"] == "/cache/trt"
    assert opts["trt_fp16_enable"] is True
    assert opts["trt_profile_min_shapes"] == "input:1x224x224x3"
    assert opts["trt_profile_max_shapes"] == "input:4x224x224x3"
    assert c.label == f"onnxruntime:{TRT_EP}" and c.device == "cuda"


def test_gpu_with_tensorrt_package_but_no_trt_ep_uses_the_native_engine():
    c = choose(Environment((CUDA_EP, CPU_EP), gpus=1, tensorrt=True, torch_cuda=True), "auto", IO)
    assert c.backend == "tensorrt" and c.label == "tensorrt:cuda"
    # the native engine also needs CUDA torch for its buffers; without it, CUDA EP
    c = choose(Environment((CUDA_EP, CPU_EP), gpus=1, tensorrt=True, torch_cuda=False), "auto", IO)
    assert c.label == f"onnxruntime:{CUDA_EP}"


def test_gpu_with_only_the_cuda_ep():
    c = choose(Environment((CUDA_EP, CPU_EP), gpus=2), "auto", IO)
    assert [p for p, _ in c.providers] == [CUDA_EP, CPU_EP]


def test_gpu_providers_without_a_gpu_fall_back_to_cpu():
    c = choose(Environment(ORT_GPU, gpus=0, tensorrt=True), "auto", IO)
    assert c.providers == ((CPU_EP, {}),) and "no NVIDIA GPU" in c.reason
    c = choose(Environment(ORT_CPU, gpus=1, tensorrt=False), "auto", IO)
    assert c.providers == ((CPU_EP, {}),) and "no GPU execution provider" in c.reason


def test_explicit_preferences():
    gpu = Environment(ORT_GPU, gpus=1, tensorrt=True, torch_cuda=True)
    assert choose(gpu, "cuda", IO).label == f"onnxruntime:{CUDA_EP}"
    assert choose(gpu, "tensorrt", IO).label == f"onnxruntime:{TRT_EP}"
    assert choose(gpu, "trt-native", IO).label == "tensorrt:cuda"
    assert choose(gpu, "cpu", IO).label == f"onnxruntime:{CPU_EP}"
    assert choose(gpu, "torch", IO).label == "torch:cuda"
    assert choose(Environment(ORT_CPU), "torch", IO).label == "torch:cpu"
    native_only = Environment((CPU_EP,), gpus=1, tensorrt=True, torch_cuda=True)
    assert choose(native_only, "tensorrt", IO).label == "tensorrt:cuda"


@pytest.mark.parametrize("prefer,match", [("cuda", "needs an NVIDIA GPU"), ("tensorrt", "needs an NVIDIA GPU"),
                                          ("trt-native", "needs an NVIDIA GPU"), ("fastest", "unknown provider")])
def test_unavailable_preferences_are_one_line_input_errors(prefer, match):
    with pytest.raises(InputError, match=match) as e:
        choose(Environment(ORT_CPU), prefer, IO)
    assert f"provider '{prefer}'" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="no torch reference"):
        choose(Environment(ORT_CPU), "torch", IO, has_torch=False)


# -- loading and running ----------------------------------------------------------------

def _tiny_onnx(path: Path, batch: int | str) -> Path:
    """y = x @ W + b and z = sigmoid(y): a small real graph to exercise the runtime's batching."""
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    b = np.array([0.5, -1.0, 2.0], np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"]),
         helper.make_node("Sigmoid", ["y"], ["z"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, 3])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())
    return path


def test_micro_batching_splits_and_concatenates(tmp_path):
    f = _tiny_onnx(tmp_path / "tiny.onnx", "batch")
    model = load_model(f, RuntimeConfig(max_batch=2, threads=1))
    assert model.label == "onnxruntime:CPUExecutionProvider"
    assert model.info.batchable and model.max_batch == 2
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    out = model(x)
    want = x @ (np.arange(12, dtype=np.float32).reshape(4, 3) / 10) + np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(out["y"], want, rtol=1e-5)
    np.testing.assert_allclose(out["z"], 1 / (1 + np.exp(-want)), rtol=1e-5)
    assert "micro-batches of up to 2" in model.describe()


def test_a_fixed_batch_model_runs_one_at_a_time(tmp_path):
    f = _tiny_onnx(tmp_path / "fixed.onnx", 1)
    model = load_model(f, RuntimeConfig(max_batch=8, threads=1))
    assert not model.info.batchable and model.max_batch == 1
    x = np.ones((3, 4), np.float32)
    assert model(x)["y"].shape == (3, 3)
    with pytest.raises(ValueError, match="does not fit"):
        model(np.ones((3, 5), np.float32))


def test_bad_onnx_file_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError, match="bad.onnx: not a readable ONNX model"):
        load_model(bad)


def test_torch_reference_matches_onnx_runtime_on_the_landmark_network(hand_weights):
    from inscene.models.detector.networks import LANDMARK_NET, converted_onnx, torch_network

    path = converted_onnx(LANDMARK_NET)
    ort_model = load_model(path, RuntimeConfig(threads=2))
    ref = load_model(path, RuntimeConfig(provider="torch", threads=2),
                     torch_factory=lambda: torch_network(LANDMARK_NET))
    assert ort_model.label == "onnxruntime:CPUExecutionProvider" and ref.label == "torch:cpu"
    x = np.random.default_rng(1).uniform(0, 1, (3, 224, 224, 3)).astype(np.float32)
    a, b = ort_model(x), ref(x)
    for name in LANDMARK_NET.outputs:
        assert a[name].shape == b[name].shape
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-3 * np.abs(b[name]).max())
    one = ort_model(x[1:2])  # a micro-batch of 3 equals three single runs
    np.testing.assert_allclose(a["landmarks"][1:2], one["landmarks"], rtol=1e-5, atol=1e-3)


# -- real GPU runs (skipped with the reason elsewhere) ---------------------------------------

_ENV = probe()


@pytest.mark.gpu
@pytest.mark.parametrize("prefer", ["tensorrt", "cuda", "trt-native"])
def test_gpu_backends_match_the_cpu(prefer, hand_weights, tmp_path, monkeypatch):
    needs = {"tensorrt": _ENV.ort_trt or _ENV.native_trt, "cuda": _ENV.ort_cuda, "trt-native": _ENV.native_trt}
    if not needs[prefer]:
        pytest.skip(f"provider '{prefer}' needs an NVIDIA GPU and its runtime; this machine has {_ENV.gpus} GPU(s), "
                    f"onnxruntime providers {list(_ENV.ort_providers)}, tensorrt "
                    f"{'importable' if _ENV.tensorrt else 'not importable'}")
    from inscene.models.detector.networks import LANDMARK_NET, converted_onnx

    monkeypatch.setenv("INSCENE_CACHE", str(tmp_path))  # engine cache in a fresh place
    path = converted_onnx(LANDMARK_NET)
    x = np.random.default_rng(2).uniform(0, 1, (2, 224, 224, 3)).astype(np.float32)
    cpu = load_model(path, RuntimeConfig(provider="cpu"))(x)
    gpu = load_model(path, RuntimeConfig(provider=prefer, max_batch=2))
    assert gpu.label != "onnxruntime:CPUExecutionProvider", gpu.describe()
    out = gpu(x)
    np.testing.assert_allclose(out["landmarks"], cpu["landmarks"], atol=0.05)
    if prefer != "cuda":
        assert any((tmp_path / "tensorrt").iterdir()), "a TensorRT engine was cached"
