"""Where a run trains: one device, several on one machine (mirrored), several machines (multiworker).

Multi-worker runs follow ``TF_CONFIG``. The chief (task ``chief`` 0, else ``worker`` 0) owns the
run folder: config, checkpoints, logs, samples. The other workers write nothing: on every start
they take the chief's state (weights, optimisers, step) from the chief over the cluster, so a
worker needs neither the chief's folder nor checkpoints of its own, and all resume at the same step.
"""

from __future__ import annotations

import json
import os
import re

import tensorflow as tf

from face2face.errors import Face2FaceError

# Errors a collective raises when a peer is gone (crashed, killed, unreachable, timed out).
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError,
               tf.errors.DeadlineExceededError)
_TASK = re.compile(r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)")


def strategy_name(name: str) -> str:
    """``auto`` resolved: ``multiworker`` with ``TF_CONFIG``, ``mirrored`` on 2+ GPUs, else ``default``."""
    if name != "auto":
        return name
    if os.environ.get("TF_CONFIG"):
        return "multiworker"
    return "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"


def make_strategy(name: str) -> tf.distribute.Strategy:
    """``tf.distribute`` strategy by name (see ``strategy_name``); ``mirrored`` spans every GPU, or
    every logical CPU device where there is no GPU."""
    name = strategy_name(name)
    if name == "multiworker":
        cluster_spec()  # a one-line error for a missing or broken TF_CONFIG
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


def cluster_spec() -> dict:
    """``TF_CONFIG`` parsed, or a one-line error."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise Face2FaceError("--strategy multiworker needs TF_CONFIG describing the cluster")
    try:
        doc = json.loads(text)
        doc["cluster"][doc["task"]["type"]][int(doc["task"]["index"])]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise Face2FaceError(f"TF_CONFIG does not describe this task in its cluster ({exc!r})") from None
    return doc


def is_chief(name: str) -> bool:
    """Whether this process owns the run folder: always, except on the non-chief workers of a cluster."""
    if strategy_name(name) != "multiworker":
        return True
    doc = cluster_spec()
    task, index = doc["task"]["type"], int(doc["task"]["index"])
    return task == "chief" or (task == "worker" and index == 0 and "chief" not in doc["cluster"])


def share_from_chief(strategy: tf.distribute.Strategy, variables: list, chief: bool) -> None:
    """Every worker takes the chief's values of ``variables`` (TensorFlow or Keras variables, the same
    list on every worker): an all-reduce to which the others add zeros (float32, and float64 for
    counters and flags, exact)."""
    groups = [[v for v in variables if tf.as_dtype(v.dtype) == tf.float32],
              [v for v in variables if tf.as_dtype(v.dtype) != tf.float32]]

    def contribution():
        context = tf.distribute.get_replica_context()
        summed = []
        for group, dtype in zip(groups, (tf.float32, tf.float64)):
            values = [tf.cast(v, dtype) * (1 if chief else 0) for v in group]
            summed.append(context.all_reduce(tf.distribute.ReduceOp.SUM, values) if values else [])
        return summed

    for group, values in zip(groups, tf.function(lambda: strategy.run(contribution))()):
        for v, value in zip(group, values):
            v.assign(tf.cast(strategy.experimental_local_results(value)[0], v.dtype))


def lost_peer_message(exc: tf.errors.OpError, step: int, checkpoint: str | None, chief: bool) -> str:
    """One line for a collective that failed because another task is gone, naming it where TensorFlow does."""
    doc = cluster_spec()
    me, addresses = doc["task"], doc["cluster"]
    names = []
    for job, index in dict.fromkeys(_TASK.findall(exc.message)):
        if (job, int(index)) != (me["type"], int(me["index"])) and int(index) < len(addresses.get(job, [])):
            names.append(f"{job} {index} ({addresses[job][int(index)]})")
    who = ", ".join(names) or "another worker"
    kept = ("the chief keeps the checkpoints" if not chief else
            f"the last checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written yet")
    return f"lost {who} at step {step} ({type(exc).__name__}); {kept}; restart every worker with --resume"
