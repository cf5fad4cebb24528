"""Interleaved measurements: throughput, peak training memory, startup.

Every repeat measures every model once per metric, in an order rotated from
repeat to repeat, so slow drift of the machine (thermal, other load) hits
candidate and baseline alike and cancels in their ratio.
"""

import dataclasses
import gc
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import keras

from keras_eca import applications
from keras_eca.benchmark import devices
from keras_eca.benchmark import suite

JIT_CHOICES = ("auto", "on", "off")
POLICY_CHOICES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class Settings:
    """How to measure. `auto` follows Keras' `jit_compile="auto"`: XLA on
    with an accelerator and always on JAX (whose only compiler it is), off
    on CPU for TensorFlow (XLA is slower there) and for PyTorch; and
    mixed_float16 with an accelerator, float32 on CPU."""

    image_size: int = 224
    inference_batch_sizes: tuple = (1, 16)
    training_batch_size: int = 16
    repeats: int = 5
    warmup: int = 2
    min_seconds: float = 2.0
    # The peak depends on which temporaries TF's parallel executor happens
    # to overlap: the maximum over 6 steps was stable within 0.3 %, over 2
    # steps it scattered by 3 %.
    memory_steps: int = 6
    memory_repeats: int = 3
    jit_compile: str = "auto"
    dtype_policy: str = "auto"

    def __post_init__(self):
        for arg in ("image_size", "training_batch_size", "repeats",
                    "memory_steps", "memory_repeats"):
            _check_int(arg, getattr(self, arg), minimum=1)
        _check_int("warmup", self.warmup, minimum=0)
        if self.image_size < 32:
            raise ValueError(
                "`image_size` must be at least 32 (stride 32 backbones). "
                f"Received: image_size={self.image_size!r}"
            )
        sizes = tuple(self.inference_batch_sizes)
        if not sizes:
            raise ValueError(
                "`inference_batch_sizes` needs at least one batch size. "
                f"Received: inference_batch_sizes={self.inference_batch_sizes!r}"
            )
        for size in sizes:
            _check_int("inference_batch_sizes", size, minimum=1)
        self.inference_batch_sizes = sizes
        if not isinstance(self.min_seconds, (int, float)) or self.min_seconds < 0:
            raise ValueError(
                "`min_seconds` must be a number >= 0. "
                f"Received: min_seconds={self.min_seconds!r}"
            )
        _check_choice("jit_compile", self.jit_compile, JIT_CHOICES)
        _check_choice("dtype_policy", self.dtype_policy, POLICY_CHOICES)

    def resolved(self, has_accelerator, backend="tensorflow"):
        """Concrete `(jit_compile: bool, dtype_policy: str)`."""
        auto_jit = backend == "jax" or (has_accelerator and backend != "torch")
        jit = {"on": True, "off": False}.get(self.jit_compile, auto_jit)
        policy = self.dtype_policy
        if policy == "auto":
            policy = "mixed_float16" if has_accelerator else "float32"
        return jit, policy


def _check_int(arg, value, minimum):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"`{arg}` must be an integer >= {minimum}. Received: {arg}={value!r}"
        )


def _check_choice(arg, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{arg}` must be one of {choices}. Received: {arg}={value!r}"
        )


def benchmark_model_names():
    """Every name the benchmark can build: the registry plus keras' own."""
    return applications.list_models() + sorted(suite.KERAS_APPLICATIONS)


def check_model_names(names):
    known = benchmark_model_names()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"Unknown benchmark model(s) {unknown}. Known: the names of "
            f"`keras-eca list-models` and {sorted(suite.KERAS_APPLICATIONS)}."
        )


def build(name, image_size):
    """A randomly initialised model, `weights=None`, for `image_size` px."""
    input_shape = (image_size, image_size, 3)
    if name in suite.KERAS_APPLICATIONS:
        constructor = getattr(keras.applications, suite.KERAS_APPLICATIONS[name])
        return constructor(weights=None, input_shape=input_shape)
    return applications.build_model(name, weights=None, input_shape=input_shape)


def compile_for_training(model, jit_compile):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        jit_compile=jit_compile,
    )


def synthetic_batch(batch_size, image_size, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((batch_size, image_size, image_size, 3), "float32")
    labels = rng.integers(0, 1000, size=(batch_size,)).astype("int32")
    # Tensors made once: no host-to-device copy inside the timed calls.
    return keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)


def _timed(steps, batch_size, min_seconds):
    """`{name: images per second}` of the callables `steps`, called in
    turn, one call each per round, until `min_seconds` per model passed
    (at least one round). Each rate is the batch over the median call time.

    Alternating single calls puts every model under the same machine state
    within tens of milliseconds; timing one model for seconds and then the
    next let drift between those windows move a ratio by up to 8 % (two
    copies of the same model measured 1.077 apart that way and 1.002 apart
    this way). The median shrugs off the odd call slowed by other work.
    Keras' `predict_on_batch` / `train_on_batch` return NumPy values, so
    every call ends with the device synchronised.
    """
    names = list(steps)
    durations = {name: [] for name in names}
    budget = min_seconds * len(names)
    start = time.perf_counter()
    turn = 0
    while True:
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            before = time.perf_counter()
            steps[name]()
            durations[name].append(time.perf_counter() - before)
        turn += 1
        if time.perf_counter() - start >= budget:
            return {
                name: batch_size / statistics.median(durations[name])
                for name in names
            }


def metric_names(settings, kinds):
    names = []
    if "inference" in kinds:
        names += [f"inference_b{b}" for b in settings.inference_batch_sizes]
    if "training" in kinds:
        names.append(f"training_b{settings.training_batch_size}")
    return names


def measure_throughput(names, settings, kinds, jit_compile, report=print):
    """`{model: {metric: [img/s per repeat]}}`, interleaved over models."""
    metrics = metric_names(settings, kinds)
    if not metrics:
        return {}
    batches = {}
    for metric in metrics:
        batches[metric] = synthetic_batch(
            suite.batch_of(metric), settings.image_size
        )
    models = {}
    for name in names:
        report(f"  building {name}")
        model = build(name, settings.image_size)
        compile_for_training(model, jit_compile)
        models[name] = model

    def step(name, metric):
        images, labels = batches[metric]
        if metric.startswith("training"):
            return lambda: models[name].train_on_batch(images, labels)
        return lambda: models[name].predict_on_batch(images)

    for name in names:
        for metric in metrics:
            for _ in range(settings.warmup):
                step(name, metric)()
    results = {name: {metric: [] for metric in metrics} for name in names}
    for repeat in range(settings.repeats):
        for metric in metrics:
            rates = _timed(
                {name: step(name, metric) for name in names},
                suite.batch_of(metric),
                settings.min_seconds,
            )
            for name in names:
                results[name][metric].append(rates[name])
        summary = ", ".join(
            f"{name} {results[name][metrics[0]][-1]:.1f}" for name in names
        )
        report(f"  repeat {repeat + 1}/{settings.repeats}: {metrics[0]} img/s: {summary}")
    del models
    gc.collect()
    return results


def measure_memory(names, settings, jit_compile, dtype_policy, report=print):
    """`({model: [peak bytes]}, {model: [peak RSS increase]})` per repeat,
    one fresh process each (see `probe_training_memory`).

    A process of its own gives each model a clean allocator; the peaks are
    over `memory_steps` training steps.
    """
    peaks = {name: [] for name in names}
    rss = {name: [] for name in names}
    for repeat in range(settings.memory_repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            spec = {
                "model": name,
                "image_size": settings.image_size,
                "batch_size": settings.training_batch_size,
                "steps": settings.memory_steps,
                "jit_compile": jit_compile,
                "dtype_policy": dtype_policy,
            }
            probe = run_memory_probe(spec)
            peaks[name].append(probe["peak_bytes"])
            rss[name].append(probe["rss_bytes"])
            report(
                f"  memory {repeat + 1}/{settings.memory_repeats} {name}: "
                f"{probe['peak_bytes'] / 2**20:.0f} MiB ({probe['source']}), "
                f"process {probe['rss_bytes'] / 2**20:.0f} MiB"
            )
    return peaks, rss


def measure_stored_activations(names, settings, report=print):
    """`{model: [bytes]}`: the forward tensors one training step keeps for
    backward (TensorFlow; see `activations.stored_activation_bytes`). The
    count is exact, so one value per model."""
    from keras_eca.benchmark import activations

    stored = {}
    for name in names:
        model = build(name, settings.image_size)
        stored[name] = [
            activations.stored_activation_bytes(
                model, settings.training_batch_size
            )
        ]
        report(f"  stored activations {name}: {stored[name][0] / 2**20:.1f} MiB")
        del model
        gc.collect()
    return stored


def run_memory_probe(spec):
    command = [sys.executable, "-m", "keras_eca.benchmark.memory_probe",
               json.dumps(spec)]
    env = {**os.environ, **devices.TF_CPU_BFC_ENV}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"The memory probe for {spec['model']!r} failed "
            f"(exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return json.loads(lines[-1])


def probe_training_memory(spec):
    """Runs in the probe process: build, train `steps` steps, report peaks.

    `peak_bytes` is the allocator's peak of tensor memory: the accelerator's,
    or on CPU with TensorFlow its BFC allocator's (the probe starts with
    `devices.TF_CPU_BFC_ENV`). Other CPU backends keep no such count, so
    there it is the peak RSS increase. `rss_bytes` is always the peak RSS
    increase, which on CPU also holds the runtime's graphs and caches.
    """
    rss_before = devices.current_rss_bytes()
    keras.config.set_dtype_policy(spec["dtype_policy"])
    model = build(spec["model"], spec["image_size"])
    compile_for_training(model, spec["jit_compile"])
    images, labels = synthetic_batch(spec["batch_size"], spec["image_size"])
    for _ in range(spec["steps"]):
        model.train_on_batch(images, labels)
    rss = devices.peak_rss_bytes() - rss_before
    cpu_peak = None
    if keras.backend.backend() == "tensorflow":
        cpu_peak = devices.tensorflow_cpu_peak_bytes()
    if devices.describe()["accelerators"]:
        peak, source = devices.accelerator_peak_bytes(), "accelerator peak"
    elif cpu_peak is not None:
        peak, source = cpu_peak, "TF CPU allocator peak"
    else:
        peak, source = rss, "peak RSS increase"
    return {"peak_bytes": peak, "source": source, "rss_bytes": rss}


def measure_import_time(repeats):
    """Seconds of `import keras` and of `import keras_eca` after it, each
    in a fresh interpreter."""
    code = (
        "import time; t0 = time.perf_counter(); import keras; "
        "t1 = time.perf_counter(); import keras_eca; "
        "print(t1 - t0, time.perf_counter() - t1)"
    )
    keras_seconds, extra_seconds = [], []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", code],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"Timing the import failed:\n{done.stderr[-2000:]}")
        first, second = done.stdout.split()[-2:]
        keras_seconds.append(float(first))
        extra_seconds.append(float(second))
    return {"keras_seconds": keras_seconds, "keras_eca_seconds": extra_seconds}


def measure_build_time(pair, settings, report=print):
    """Seconds to build each model of `pair`, interleaved, after one
    untimed build of each (first-use imports and tracing caches)."""
    seconds = {name: [] for name in pair}
    for name in pair:
        build(name, settings.image_size)
    for repeat in range(settings.repeats):
        order = pair if repeat % 2 == 0 else pair[::-1]
        for name in order:
            keras.backend.clear_session()
            gc.collect()
            start = time.perf_counter()
            build(name, settings.image_size)
            seconds[name].append(time.perf_counter() - start)
    keras.backend.clear_session()
    gc.collect()
    report(
        "  build seconds: "
        + ", ".join(f"{n} {statistics.median(s):.2f}" for n, s in seconds.items())
    )
    return seconds
