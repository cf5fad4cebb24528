"""What the benchmark runs on, and device memory, for each Keras backend.

The backend libraries are imported inside the function of their backend so
that this module loads on any of them.
"""

import os
import platform
import resource

import keras


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _tensorflow_accelerators():
    import tensorflow as tf

    found = []
    for kind in ("GPU", "TPU"):
        for device in tf.config.list_physical_devices(kind):
            details = tf.config.experimental.get_device_details(device)
            found.append(details.get("device_name", device.name))
    return found, {"tensorflow": tf.__version__}


def _jax_accelerators():
    import jax

    found = [str(d.device_kind) for d in jax.devices() if d.platform != "cpu"]
    return found, {"jax": jax.__version__}


def _torch_accelerators():
    import torch

    found = [
        torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
    ]
    return found, {"torch": torch.__version__}


_ACCELERATORS = {
    "tensorflow": _tensorflow_accelerators,
    "jax": _jax_accelerators,
    "torch": _torch_accelerators,
}


def describe():
    """Backend, versions, CPU and accelerators, for the report."""
    backend = keras.backend.backend()
    probe = _ACCELERATORS.get(backend)
    accelerators, versions = probe() if probe else ([], {})
    return {
        "backend": backend,
        "keras": keras.__version__,
        **versions,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "accelerators": accelerators,
        "device": accelerators[0] if accelerators else "CPU",
    }


def current_rss_bytes():
    """Resident memory of this process now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return peak_rss_bytes()


def peak_rss_bytes():
    """Peak resident memory of this process image.

    Linux' VmHWM first: `ru_maxrss` survives `exec`, so a child started by a
    big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _tensorflow_peak():
    import tensorflow as tf

    return tf.config.experimental.get_memory_info("GPU:0")["peak"]


# Set before TensorFlow starts, TF's CPU tensors come from its BFC
# allocator, which keeps the peak bytes in use, as it does on a GPU.
TF_CPU_BFC_ENV = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}


def tensorflow_cpu_peak_bytes():
    """Peak bytes of tensors TF's CPU allocator held, or `None` when the
    process did not start with `TF_CPU_BFC_ENV`."""
    import tensorflow as tf

    try:
        return tf.config.experimental.get_memory_info("CPU:0")["peak"]
    except ValueError:  # the default CPU allocator keeps no statistics
        return None


def _jax_peak():
    import jax

    return jax.devices()[0].memory_stats()["peak_bytes_in_use"]


def _torch_peak():
    import torch

    return torch.cuda.max_memory_allocated()


_ACCELERATOR_PEAK = {
    "tensorflow": _tensorflow_peak,
    "jax": _jax_peak,
    "torch": _torch_peak,
}


def accelerator_peak_bytes():
    """Peak bytes allocated on the first accelerator by this process."""
    return _ACCELERATOR_PEAK[keras.backend.backend()]()
