"""Threads for training on a CPU without a GPU.

TensorFlow's default on a 2-core CPU runs each op on both cores, one op at a time. A pix2pix step
has independent ops (the discriminator on the real and on the generated pair, the generator's and
the discriminator's updates), and its small layers split poorly over two threads: one thread per
op, two ops at once, trained 5% (fp32) and 12% (bf16) more steps a second on a 2-core AMD EPYC,
three rounds each (docs/training.md). Other core counts keep TensorFlow's default (not measured),
and so does a process whose environment sets the threads itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

TWO_CORES = (1, 2)  # (threads per op, ops at once) on a 2-core CPU
ENVIRONMENT = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")  # TensorFlow's own settings


def training_threads(cores: int, gpu: bool, environ: Mapping[str, str]) -> tuple[int, int] | None:
    """(threads per op, ops at once) for training, or None to keep TensorFlow's choice."""
    if gpu or cores != 2 or any(name in environ for name in ENVIRONMENT):
        return None
    return TWO_CORES


def use_training_threads() -> tuple[int, int] | None:
    """Apply ``training_threads`` to this process; call before TensorFlow runs anything (after,
    TensorFlow's choice stays). Returns what was set."""
    import tensorflow as tf

    threads = training_threads(len(os.sched_getaffinity(0)), bool(tf.config.list_physical_devices("GPU")),
                               os.environ)
    if threads is None:
        return None
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(threads[1])
    except RuntimeError:  # TensorFlow already runs: its threads are fixed
        log.debug("training threads left as they are: TensorFlow is already initialised")
        return None
    return threads
