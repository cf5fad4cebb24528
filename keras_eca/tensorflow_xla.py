"""XLA kernels for small TensorFlow sub-graphs (TensorFlow only).

Whole-model XLA is slower than TensorFlow's own kernels on CPU (oneDNN
convs), but a chain of elementwise ops compiled alone becomes one loop
over the data. `compiled(fn)` is `fn` as a `tf.function` XLA must compile;
called while a model is traced (a SavedModel export), it becomes one call
op that the runtime compiles on first use for each input shape. Such a
SavedModel needs a runtime with XLA's CPU/GPU JIT: TensorFlow's Python and
C++ packages have it; TF Serving only with `--xla_cpu_compilation_enabled`.
"""

import functools

import tensorflow as tf


@functools.lru_cache(maxsize=None)
def compiled(fn):
    """`fn` (a module-level function of tensors) compiled by XLA, one
    `tf.function` per `fn` shared by every caller."""
    return tf.function(fn, jit_compile=True)

