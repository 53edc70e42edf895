"""Training across devices and machines, on this CPU: two real `face2face train --strategy
multiworker` processes on 127.0.0.1 (a lost worker, SIGTERM while blocked, resume), and the
mirrored strategy over two logical CPU devices."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

tf = pytest.importorskip("tensorflow")

WAIT = 120  # s: the longest any process may take; a hang fails the test instead of stalling CI
STEPS = 20  # of the two-worker run: a checkpoint every 5, killed after the first, stopped after the next
TRAIN = ["--ngf", "8", "--ndf", "8", "--batch-size", "2", "--checkpoint-every", "5", "--sample-every", "1000",
         "--settle-fraction", "0", "--ema", "0.9"]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Cluster:
    """Two `face2face train --strategy multiworker` processes, one run folder each (as on two machines)."""

    def __init__(self, data: Path, runs: list[Path], logs: Path, steps: int, resume: bool) -> None:
        self.addresses = [f"127.0.0.1:{p}" for p in _free_ports(len(runs))]
        self.procs, self.errs = [], []
        for index, run in enumerate(runs):
            tf_config = {"cluster": {"worker": self.addresses}, "task": {"type": "worker", "index": index}}
            err = logs / f"{run.name}.{time.monotonic_ns()}.err"
            cmd = [sys.executable, "-m", "face2face", "train", str(data), "-o", str(run), "--steps", str(steps),
                   "--strategy", "multiworker", *TRAIN, *(["--resume"] if resume else [])]
            with open(err, "wb") as stderr:
                self.procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr,
                                                   env={**os.environ, "TF_CONFIG": json.dumps(tf_config)}))
            self.errs.append(err)

    def lines(self, index: int) -> list[str]:
        """Task ``index``'s stderr lines, progress bars left out."""
        text = self.errs[index].read_text().replace("\r", "\n")
        return [line for line in text.splitlines() if line.strip() and not line.startswith("train:")]

    def wait(self, index: int, timeout: float = WAIT) -> int:
        return self.procs[index].wait(timeout=timeout)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_for(path: Path, cluster: Cluster) -> None:
    deadline = time.monotonic() + WAIT
    while not path.exists():
        assert all(p.poll() is None for p in cluster.procs), [cluster.lines(i) for i in range(2)]
        assert time.monotonic() < deadline, f"no {path} after {WAIT} s"
        time.sleep(0.1)


def _steps(run: Path) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in (run / "checkpoints").glob("ckpt-*.index"))


def test_two_workers_train_lose_a_worker_stop_on_sigterm_resume_and_export(tiny_dataset, tmp_path):
    chief, worker = tmp_path / "chief", tmp_path / "worker"
    runs = [chief, worker]

    # 1. Fresh start; the worker is killed once the chief has checkpointed step 5.
    cluster = Cluster(tiny_dataset, runs, tmp_path, steps=STEPS, resume=False)
    try:
        _wait_for(chief / "checkpoints" / "ckpt-5.index", cluster)
        cluster.procs[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        while not any("lost worker" in line for line in cluster.lines(0)) and cluster.procs[0].poll() is None:
            assert time.monotonic() - killed < WAIT, cluster.lines(0)
            time.sleep(0.1)
        reported_after = time.monotonic() - killed
        assert cluster.wait(0) == 1  # then TensorFlow's teardown: 3-33 s seen on 2 cores
    finally:
        cluster.close()
    lines = cluster.lines(0)
    assert reported_after < 30, reported_after  # a broken connection at once, a silent peer after the heartbeat timeout
    assert len(lines) == 2 and lines[0].startswith("options differing"), lines  # no traceback, no TF log lines
    assert re.search(rf"^face2face: error: lost worker 1 \({cluster.addresses[1]}\) at step \d+ .*ckpt-\d+", lines[1])
    kept = _steps(chief)
    assert kept[-1] >= 5 and kept[-1] % 5 == 0  # no checkpoint of a step cut short

    # 2. Both resume at the chief's step; the worker hangs (SIGSTOP) and the blocked chief obeys SIGTERM.
    cluster = Cluster(tiny_dataset, runs, tmp_path, steps=STEPS, resume=True)
    try:
        _wait_for(chief / "checkpoints" / f"ckpt-{kept[-1] + 5}.index", cluster)
        cluster.procs[1].send_signal(signal.SIGSTOP)
        time.sleep(0.5)  # the chief's next step now waits for the worker
        cluster.procs[0].send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        assert cluster.wait(0, timeout=30) == 128 + signal.SIGTERM, cluster.lines(0)
        stop_after = time.monotonic() - stopped
    finally:
        cluster.close()
    for index in (0, 1):
        assert f"at step {kept[-1]}" in next(line for line in cluster.lines(index) if "resumed" in line)
    assert stop_after < 15, stop_after
    assert len(cluster.lines(0)) == 3 and "signal 15" in cluster.lines(0)[-1]  # resumed, options, stopped
    kept = _steps(chief)

    # 3. Both resume and finish; only the chief's folder holds the run.
    cluster = Cluster(tiny_dataset, runs, tmp_path, steps=STEPS, resume=True)
    try:
        assert [cluster.wait(0), cluster.wait(1)] == [0, 0], [cluster.lines(i) for i in range(2)]
    finally:
        cluster.close()
    for index in (0, 1):
        assert f"at step {kept[-1]}" in next(line for line in cluster.lines(index) if "resumed" in line)
    assert _steps(chief)[-1] == STEPS
    config = json.loads((chief / "config.json").read_text())
    assert config["resolved"]["replicas"] == 2
    assert not (worker / "checkpoints").exists() and not (worker / "config.json").exists()

    from face2face.train.export import export

    report = export(chief, tmp_path / "model.onnx")
    assert Path(report.model).is_file() and report.steps == STEPS and report.max_error <= 1e-4


# Runs train() once per config on two logical CPU devices (made before TensorFlow initialises).
MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from face2face.train.trainer import TrainConfig, train
for options in json.loads(sys.argv[3]):
    history = []
    result = train(sys.argv[1], sys.argv[2], TrainConfig(**options),
                   progress=lambda step, total, losses: history.append(losses))
    print(json.dumps({"step": result.step, "history": history}))
"""


def _train_mirrored(data: Path, run: Path, *runs: dict) -> list[dict]:
    """``train`` once per dict of options, in one process with two logical CPU devices."""
    common = {"ngf": 8, "ndf": 8, "batch_size": 2, "strategy": "mirrored", "learning_rate": 1e-3,
              "checkpoint_every": 10, "sample_every": 1000, "settle_fraction": 0.0}
    configs = [{**common, **options} for options in runs]
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(data), str(run), json.dumps(configs)],
                          capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()[-len(runs):]]


def _structure(model: Path) -> tuple[list[str], list[tuple[int, ...]]]:
    """The network's node op types in graph order up to its last convolution (the output's tail, a
    tanh or the reference's add and clip, left out), and its convolutions' weight shapes (names
    depend on what the process built before)."""
    import onnx

    graph = onnx.load(str(model)).graph
    ops = [n.op_type for n in graph.node if n.op_type not in ("Slice", "Transpose")]  # layout; the reference's slice
    last = len(ops) - ops[::-1].index("ConvTranspose")
    return ops[:last], sorted(tuple(i.dims) for i in graph.initializer if len(i.dims) == 4 and i.dims[2] > 1)


def test_mirrored_on_two_cpu_devices_trains_resumes_and_exports_like_one_device(tiny_dataset, tiny_model, tmp_path):
    run = tmp_path / "run"
    # a generator that draws the whole face, whose L1 has far to fall in 20 steps (a residual one
    # starts near its answer, and its first steps of Adam move it off before it settles)
    first, second = _train_mirrored(tiny_dataset, run, {"steps": 20, "ema": 0.9, "residual": False},
                                    {"steps": 30, "resume": True, "ema": 0.9})
    config = json.loads((run / "config.json").read_text())["resolved"]
    assert config["strategy"] == "MirroredStrategy" and config["replicas"] == 2
    assert [d for d in config["devices"] if "CPU" in d] == ["/device:CPU:0", "/device:CPU:1"]
    history = first["history"]
    assert len(history) == 20 and all(math.isfinite(v) for h in history + second["history"] for v in h.values())
    early, late = (sum(h["G_L1"] for h in part) / 5 for part in (history[:5], history[-5:]))
    assert late < 0.85 * early, (early, late)
    assert second["step"] == 30 and len(second["history"]) == 10  # steps 21..30: resumed at 20
    assert _steps(run) == [10, 20, 30]
    # The generator's weight average was updated once per step on both runs (restored on resume).
    saved = tf.train.load_checkpoint(str(run / "checkpoints" / "ckpt-30"))
    assert saved.get_tensor("average/count/.ATTRIBUTES/VARIABLE_VALUE") == 30

    from face2face.train.export import export

    report = export(run, tmp_path / "mirrored.onnx")
    assert report.max_error <= 1e-4
    assert _structure(Path(report.model)) == _structure(tiny_model)  # tiny_model: one device, same widths
    import onnx

    assert "Tanh" in [n.op_type for n in onnx.load(report.model).graph.node]  # resumed as it was trained


@pytest.mark.parametrize("cluster,task,peer,chief", [
    ({"worker": ["a:1", "b:1"]}, ("worker", 0), ("worker", 1), True),
    ({"worker": ["a:1", "b:1"]}, ("worker", 1), ("worker", 0), False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), ("chief", 0), False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), ("worker", 0), True),
])
def test_the_chief_owns_the_run_and_a_lost_peer_is_named(monkeypatch, cluster, task, peer, chief):
    from face2face.train.distribute import is_chief, lost_peer_message

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": task[0], "index": task[1]}}))
    assert is_chief("auto") is chief and is_chief("multiworker") is chief and is_chief("default")
    job, index = peer
    exc = tf.errors.UnavailableError(None, None, f"Error reported from /job:{job}/task:{index}: The following "
                                     f"tasks are unhealthy:\n/job:{job}/replica:0/task:{index}")
    message = lost_peer_message(exc, 7, "RUN/checkpoints/ckpt-5", chief)
    assert message.startswith(f"lost {job} {index} ({cluster[job][index]}) at step 7 (UnavailableError)")
    assert ("ckpt-5" in message) is chief and "\n" not in message


def test_a_broken_tf_config_is_one_line(monkeypatch):
    from face2face.errors import Face2FaceError
    from face2face.train.distribute import is_chief

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}))
    with pytest.raises(Face2FaceError, match="TF_CONFIG does not describe this task"):
        is_chief("multiworker")
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(Face2FaceError, match="needs TF_CONFIG"):
        is_chief("multiworker")
