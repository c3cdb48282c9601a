"""Freezing and optimising really change the graph, and inputs are never folded away."""

import numpy as np
import pytest
from conftest import SMALL_CNN, SMALL_MOBILENET

from bench.modes import Request, load_mode
from bench.modes import graph as g
from cases import get_workload

tf = pytest.importorskip("tensorflow")

VARIABLE_OPS = {"VarHandleOp", "VariableV2", "ReadVariableOp", "AssignVariableOp", "Variable"}
BATCH_NORM_OPS = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3",
                  "BatchNormWithGlobalNormalization"}
CONV_OPS = {"Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "_FusedDepthwiseConv2dNative",
            "_MklConv2D", "_MklFusedConv2D", "_MklNativeConv2D", "_MklNativeFusedConv2D",
            "_MklDepthwiseConv2dNative", "_MklNativeDepthwiseConv2dNative",
            "_MklFusedDepthwiseConv2dNative", "_MklNativeFusedDepthwiseConv2dNative"}


def _request(spec, phase="infer", input_style="resident", seed=0, batch=2):
    workload = get_workload(spec)
    images, labels = workload.inputs(batch, seed)
    return Request(workload, workload.weights(0), images, labels, phase, "cpu", input_style)


def _eager(spec, seed):
    return np.asarray(load_mode("eager").prepare(_request(spec, seed=seed)).step())


@pytest.mark.parametrize("spec", [SMALL_CNN, SMALL_MOBILENET])
def test_frozen_graph_has_no_variables(spec):
    prepared = load_mode("frozen").prepare(_request(spec))
    ops = {node.op for node in prepared.handles.graph_def.node}
    assert not ops & VARIABLE_OPS
    assert "Placeholder" in ops  # the input stayed an input
    assert prepared.graph_nodes["frozen"] < prepared.graph_nodes["built"]


def test_optimized_mobilenet_folds_batch_norm_and_shrinks():
    frozen = load_mode("frozen").prepare(_request(SMALL_MOBILENET))
    optimized = load_mode("optimized").prepare(_request(SMALL_MOBILENET))
    frozen_ops = g.op_types(frozen.handles.graph_def)
    optimized_ops = g.op_types(optimized.handles.graph_def)
    assert frozen_ops.get("FusedBatchNormV3", 0) == 27  # conv1 + 13 x (depthwise, pointwise)
    assert not set(optimized_ops) & BATCH_NORM_OPS
    assert not set(g.op_types(optimized.handles.folded_graph_def)) & BATCH_NORM_OPS
    assert optimized.graph_nodes["optimized"] < optimized.graph_nodes["frozen"]
    np.testing.assert_allclose(np.asarray(optimized.step()), np.asarray(frozen.step()),
                               atol=1e-3)


def _swap_resident_input(prepared, images):
    """Load new bytes into the resident input variable through its own initialiser."""
    graph, session = prepared.handles.graph, prepared.handles.session
    with graph.as_default():
        holder = [v for v in tf.compat.v1.global_variables()
                  if v.op.name == g.RESIDENT_NAME][0]
    session.run(holder.initializer, feed_dict={graph.get_tensor_by_name("init/images:0"): images})


@pytest.mark.parametrize("mode", ["session", "frozen", "optimized"])
@pytest.mark.parametrize("spec", [SMALL_CNN, SMALL_MOBILENET])
def test_resident_input_is_not_constant_folded(spec, mode):
    """If an optimiser had folded the input into the graph, new bytes would not change logits."""
    prepared = load_mode(mode).prepare(_request(spec, seed=0))
    first = np.asarray(prepared.step())
    np.testing.assert_allclose(first, _eager(spec, 0), atol=1e-3)
    other_images, _ = get_workload(spec).inputs(2, seed=1)
    _swap_resident_input(prepared, other_images)
    second = np.asarray(prepared.step())
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, _eager(spec, 1), atol=1e-3)

    # And the graph the runtime actually executes (after grappler) still convolves.
    options = tf.compat.v1.RunOptions(output_partition_graphs=True)
    metadata = tf.compat.v1.RunMetadata()
    graph = prepared.handles.graph
    logits = graph.get_tensor_by_name(f"{g.LOGITS_NAME}:0")
    prepared.handles.session.run(logits, options=options, run_metadata=metadata)
    executed = {n.op for p in metadata.partition_graphs for n in p.node}
    assert executed & CONV_OPS, sorted(executed)


@pytest.mark.parametrize("mode", ["function", "xla"])
def test_traced_functions_take_the_input_as_an_argument(mode):
    prepared = load_mode(mode).prepare(_request(SMALL_CNN))
    concrete = prepared.handles.concrete_function
    shapes = [tuple(t.shape) for t in concrete.inputs if t.dtype == tf.float32]
    assert (2, 16, 16, 1) in shapes
    other_images, _ = get_workload(SMALL_CNN).inputs(2, seed=1)
    np.testing.assert_allclose(np.asarray(prepared.handles.function(other_images)),
                               _eager(SMALL_CNN, 1), atol=1e-3)


def test_gpu_request_without_gpu_is_a_clear_error():
    from bench.modes import DeviceUnavailable

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    request = _request(SMALL_CNN)
    request.device = "gpu"
    for mode in ("session", "eager", "keras"):
        with pytest.raises(DeviceUnavailable, match="no GPU"):
            load_mode(mode).prepare(request)


PLACEMENT_MODES = ["session", "frozen", "eager", "function", "xla", "keras"]


@pytest.mark.parametrize("mode", PLACEMENT_MODES)
def test_gpu_cells_run_on_the_gpu(mode):
    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("no GPU on this machine")
    request = _request(SMALL_CNN)
    request.device = "gpu"
    prepared = load_mode(mode).prepare(request)
    logits = np.asarray(prepared.step())
    np.testing.assert_allclose(logits, _eager(SMALL_CNN, 0), atol=1e-3)
    _assert_ran_on(prepared, request, "GPU")


@pytest.mark.parametrize("mode", PLACEMENT_MODES)
def test_cpu_cells_run_on_the_cpu(mode):
    """The placement check of the GPU test, run where there is a device to run it on."""
    request = _request(SMALL_CNN)
    prepared = load_mode(mode).prepare(request)
    prepared.step()
    _assert_ran_on(prepared, request, "CPU")


def _assert_ran_on(prepared, request, device_type: str) -> None:
    devices = executed_devices(prepared, request)
    assert devices, "no placement was observed"
    types = {tf.DeviceSpec.from_string(d).device_type for d in devices}
    assert types == {device_type}, sorted(devices)


COMPUTE_OPS = CONV_OPS | {"MatMul", "_FusedMatMul", "_MklMatMul", "_MklFusedMatMul",
                          "_MklNativeFusedMatMul"}


def executed_devices(prepared, request) -> set[str]:
    """Devices the network's convolutions and matmuls actually ran on, as TensorFlow reports
    them after running (not the devices requested): a Session's RunMetadata partition graphs;
    the partition graphs of the tf.functions a step runs (tf.function, Keras' predict); and
    for code no partition graph shows (op-by-op eager, an XLA cluster), the device of the
    output tensor the network's last op produced."""
    from tensorflow.python.eager import context

    from bench.modes.handles import GraphHandles, KerasHandles
    from bench.modes.runtime import device_name

    handles = prepared.handles
    if isinstance(handles, GraphHandles):
        options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE,
                                          output_partition_graphs=True)
        metadata = tf.compat.v1.RunMetadata()
        logits = handles.graph.get_tensor_by_name(f"{g.LOGITS_NAME}:0")
        handles.session.run(logits, options=options, run_metadata=metadata)
        return {n.device for p in metadata.partition_graphs for n in p.node
                if n.op in COMPUTE_OPS}
    eager = context.context()
    eager.enable_run_metadata()
    try:
        prepared.step()
        metadata = eager.export_run_metadata()
    finally:
        eager.disable_run_metadata()
    devices = {n.device for f in metadata.function_graphs for p in f.partition_graphs
               for n in p.node if n.op in COMPUTE_OPS}
    with tf.device(device_name(request.device)):
        images = tf.identity(tf.constant(request.images))
        if isinstance(handles, KerasHandles):
            output = handles.model(images, training=False)
        else:
            output = handles.function(images)
    return devices | {output.device}
