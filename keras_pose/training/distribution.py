"""Training on several devices or machines, on each backend's own engine.

`setup_distribution` turns ``train.distribution`` (``keras-pose train
--distribution data|model [--mesh B,M] [--coordinator HOST:PORT
--num-processes N --process-id I]``) into a `DistributionSetup`:

- **JAX**: ``keras.distribution``. ``data``: `DataParallel` over every
  device of every process (multi-process through
  ``keras.distribution.initialize``, or the ``KERAS_DISTRIBUTION_*``
  environment variables; Keras gives each process its shard of every global
  batch). ``model``: `ModelParallel` on a ``(batch, model)`` device mesh
  with `vit_layout_map` (Megatron-style splits of the ViT attention and MLP
  kernels), for ViTs that do not fit one device. Batch-norm statistics are
  those of the global batch (one program over the sharded batch).
- **TensorFlow**: ``data``: ``tf.distribute.MirroredStrategy`` over the
  local GPUs (or the logical CPUs when there is no GPU); build and compile
  inside ``setup.scope()``. Batch norm is synchronised: inside
  ``setup.batch_norm_sync(model)`` (the trainer wraps ``fit`` in it) every
  ``BatchNormalization`` layer all-reduces its batch mean and variance over
  the replicas, so the normalisation and the moving statistics are those of
  the global batch, as on one device (``train.distribution.sync_batch_norm:
  false`` keeps per-replica statistics). The layers are switched back after
  ``fit``: saved configs and presets never hold ``synchronized=True`` (which
  other backends refuse to load). Several machines
  (``MultiWorkerMirroredStrategy``) and ``model`` are refused with a message
  pointing to the JAX backend, as is XLA under ``MirroredStrategy`` on CPU
  (it fails there).
- **PyTorch**: Keras 3 offers no distribution API for this backend; refused
  with a message naming the alternatives (so there is no batch-norm
  synchronisation to do; torch's own ``SyncBatchNorm`` needs a
  ``torch.distributed`` process group and module swap that Keras layers do
  not support).

The batch size of a config is the *global* batch (summed over replicas);
the learning rate is not rescaled (`describe` says so in the log).
"""

import contextlib
import dataclasses
import os

import keras

from keras_pose.errors import TrainConfigError

KINDS = ("data", "model")


def simulate_cpu_devices(count=2):
    """Make ``count`` devices out of this CPU, to try distributed runs on one machine.

    JAX: ``--xla_force_host_platform_device_count``; TensorFlow: ``count``
    logical CPUs. Call it first, before the backend runs anything (JAX reads
    the flag when it starts; TensorFlow refuses once initialised). The devices
    share the same cores: a check of correctness and overhead, not speed.
    """
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def vit_layout_map(device_mesh, model_axis="model"):
    """A ``keras.distribution.LayoutMap`` splitting ViT kernels over ``model_axis``.

    Attention ``qkv`` and MLP ``fc1`` kernels are split by output column,
    ``proj`` and ``fc2`` by input row (Megatron-LM); everything else is
    replicated. Keys are regular expressions on variable paths
    (``transformer_layer_3/attention/qkv/kernel``).
    """
    layout = keras.distribution.LayoutMap(device_mesh)
    layout[r".*attention/qkv/kernel"] = (None, model_axis)
    layout[r".*attention/qkv/bias"] = (model_axis,)
    layout[r".*attention/proj/kernel"] = (model_axis, None)
    layout[r".*mlp/fc1/kernel"] = (None, model_axis)
    layout[r".*mlp/fc1/bias"] = (model_axis,)
    layout[r".*mlp/fc2/kernel"] = (model_axis, None)
    return layout


def batch_norm_layers(model):
    """Every ``keras.layers.BatchNormalization`` in ``model`` (nested layers included), each once."""
    found, seen = [], set()
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and id(layer) not in seen:
            seen.add(id(layer))
            found.append(layer)
    return found


@contextlib.contextmanager
def synchronized_batch_norm(model, enabled=True):
    """Within the block, ``model``'s batch-norm layers all-reduce their statistics over the replicas.

    TensorFlow only (Keras' ``BatchNormalization.synchronized``: under a
    ``tf.distribute`` strategy the batch mean and variance, and so the
    moving statistics, are those of the global batch; outside a strategy it
    changes nothing). Each layer gets its own setting back on exit, so the
    model's config (and any preset saved later) is unchanged. Functions
    traced inside the block (``fit``'s train step) keep the synchronisation.

    Args:
        model: a Keras model or layer.
        enabled: False: a no-op (one device, or per-replica statistics asked).

    Yields:
        the number of batch-norm layers switched.

    Raises:
        TrainConfigError: ``enabled`` on another backend (JAX needs nothing:
            one program sees the global batch; PyTorch has no distribution).
    """
    if enabled and keras.backend.backend() != "tensorflow":
        raise TrainConfigError(
            f"synchronised batch norm is for TensorFlow's MirroredStrategy; on the {keras.backend.backend()} backend "
            "leave it off (JAX's data parallelism already computes batch statistics over the global batch).")
    layers = batch_norm_layers(model) if enabled else []
    before = [layer.synchronized for layer in layers]
    changed = not all(before)

    def retrace():  # a train step traced with the other setting must not be reused
        if changed and getattr(model, "train_function", None) is not None:
            model.train_function = None

    for layer in layers:
        layer.synchronized = True
    retrace()
    try:
        yield len(layers)
    finally:
        for layer, value in zip(layers, before):
            layer.synchronized = value
        retrace()


@dataclasses.dataclass
class DistributionSetup:
    """How a run is distributed.

    Attributes:
        kind: None (one device), "data" or "model".
        backend: the Keras backend.
        num_replicas: model copies the global batch is split over.
        num_processes: processes (machines) taking part.
        process_id: this process's index (0: the one that writes files).
        strategy: the ``tf.distribute`` strategy (TensorFlow), else None.
        distribution: the ``keras.distribution`` object (JAX), else None.
        jit_compile: the ``compile(jit_compile=...)`` the engine needs (None:
            the model's default; False under MirroredStrategy on CPU).
        sync_batch_norm: whether `batch_norm_sync` synchronises the batch
            norms (TensorFlow data parallel with more than one replica and
            ``sync_batch_norm`` asked; on JAX the statistics are already
            those of the global batch).
    """

    kind: str = None
    backend: str = None
    num_replicas: int = 1
    num_processes: int = 1
    process_id: int = 0
    strategy: object = None
    distribution: object = None
    jit_compile: object = None
    sync_batch_norm: bool = False

    @property
    def is_chief(self):
        """Whether this process writes checkpoints, logs and evaluation results."""
        return self.process_id == 0

    def scope(self):
        """Build and compile the model inside this (the strategy's scope on TensorFlow)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def batch_norm_sync(self, model):
        """Context for ``fit``: `synchronized_batch_norm` when `sync_batch_norm`, else a no-op."""
        return synchronized_batch_norm(model, enabled=self.sync_batch_norm)

    def describe(self, global_batch):
        """One log line: the engine, the replicas, the global and per-replica batch."""
        if self.kind is None:
            return f"one device; batch {global_batch}"
        engine = ("tf.distribute.MirroredStrategy" if self.strategy is not None else
                  f"keras.distribution.{type(self.distribution).__name__}")
        per = global_batch / self.num_replicas
        if self.strategy is not None and self.num_replicas > 1:
            norms = ("batch norm synchronised over the replicas" if self.sync_batch_norm
                     else "batch norm with per-replica statistics")
        else:
            norms = "batch norm over the global batch"
        return (f"{engine} over {self.num_replicas} replicas in {self.num_processes} process"
                f"{'es' if self.num_processes != 1 else ''}; global batch {global_batch} "
                f"({per:g} per replica); {norms}; the learning rate is not rescaled for the global batch")


def _parse_mesh(mesh, device_count):
    if mesh is None:
        return (1, device_count)
    try:
        shape = tuple(int(v) for v in str(mesh).replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise TrainConfigError(f"train.distribution.mesh must be two positive integers 'BATCH,MODEL' (e.g. 1,2), "
                               f"got {mesh!r}.")
    if shape[0] * shape[1] != device_count:
        raise TrainConfigError(f"train.distribution.mesh {shape[0]}x{shape[1]} needs {shape[0] * shape[1]} devices; "
                               f"there are {device_count}.")
    return shape


def setup_distribution(kind=None, mesh=None, coordinator=None, num_processes=None, process_id=None,
                       sync_batch_norm=True):
    """Set up the backend's distribution engine (call before building the model).

    Args:
        kind: None, "data" or "model".
        mesh: ``"BATCH,MODEL"`` device-mesh shape for ``model`` (default
            ``1,<all devices>``).
        coordinator: ``HOST:PORT`` of process 0 (JAX multi-process).
        num_processes, process_id: the process count and this process's
            index (JAX multi-process); the ``KERAS_DISTRIBUTION_*``
            environment variables work too.
        sync_batch_norm: TensorFlow ``data``: synchronise the batch norms
            over the replicas in `DistributionSetup.batch_norm_sync`
            (default); False keeps per-replica statistics.

    Returns:
        `DistributionSetup`.

    Raises:
        TrainConfigError: a combination this backend cannot run, naming the
            alternative.
    """
    backend = keras.backend.backend()
    if kind is None:
        if coordinator or (num_processes or 1) > 1:
            raise TrainConfigError("train.distribution.coordinator / num_processes need train.distribution.kind: "
                                   "data or model.")
        return DistributionSetup(backend=backend)
    if kind not in KINDS:
        raise TrainConfigError(f"train.distribution.kind must be one of {KINDS} or null, got {kind!r}.")
    if backend == "jax":
        return _setup_jax(kind, mesh, coordinator, num_processes, process_id)
    if backend == "tensorflow":
        return _setup_tensorflow(kind, coordinator, num_processes, sync_batch_norm)
    raise TrainConfigError(
        f"distributed training is not available on the {backend} backend: Keras 3 ({keras.__version__}) has no "
        "distribution API for it. Use the JAX backend (KERAS_BACKEND=jax; keras.distribution: data and model "
        "parallel, several machines) or TensorFlow (KERAS_BACKEND=tensorflow; MirroredStrategy over local GPUs)."
    )


def _setup_jax(kind, mesh, coordinator, num_processes, process_id):
    import jax

    multi = bool(coordinator) or (num_processes or 1) > 1 or "KERAS_DISTRIBUTION_NUM_PROCESSES" in os.environ
    if multi:
        if coordinator and (num_processes is None or process_id is None):
            raise TrainConfigError("train.distribution.coordinator needs num_processes and process_id too "
                                   "(--num-processes N --process-id I on every machine).")
        keras.distribution.initialize(job_addresses=coordinator, num_processes=num_processes, process_id=process_id)
    devices = keras.distribution.list_devices()
    if kind == "data":
        distribution = keras.distribution.DataParallel(devices=devices)
    else:
        shape = _parse_mesh(mesh, len(devices))
        device_mesh = keras.distribution.DeviceMesh(shape=shape, axis_names=("batch", "model"), devices=devices)
        distribution = keras.distribution.ModelParallel(layout_map=vit_layout_map(device_mesh),
                                                        batch_dim_name="batch")
    keras.distribution.set_distribution(distribution)
    replicas = len(devices) if kind == "data" else distribution.device_mesh.shape[0]
    return DistributionSetup(kind=kind, backend="jax", num_replicas=replicas, num_processes=jax.process_count(),
                             process_id=jax.process_index(), distribution=distribution)


def _setup_tensorflow(kind, coordinator, num_processes, sync_batch_norm):
    import tensorflow as tf

    if kind == "model":
        raise TrainConfigError("train.distribution.kind: model needs the JAX backend (keras.distribution."
                               "ModelParallel); on TensorFlow use data, or KERAS_BACKEND=jax.")
    if coordinator or (num_processes or 1) > 1:
        raise TrainConfigError(
            "training on several machines is not supported on the TensorFlow backend: Keras 3's fit does not run "
            "under tf.distribute.MultiWorkerMirroredStrategy. Use the JAX backend (KERAS_BACKEND=jax) with "
            "--distribution data --coordinator HOST:PORT --num-processes N --process-id I."
        )
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    return DistributionSetup(kind=kind, backend="tensorflow", num_replicas=strategy.num_replicas_in_sync,
                             strategy=strategy, jit_compile=None if gpus else False,
                             sync_batch_norm=bool(sync_batch_norm) and strategy.num_replicas_in_sync > 1)


__all__ = ["DistributionSetup", "KINDS", "batch_norm_layers", "setup_distribution", "simulate_cpu_devices",
           "synchronized_batch_norm", "vit_layout_map"]
