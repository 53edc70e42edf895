"""The generator alone, per engine, precision and graph: median ms per 256 px image, batch 1.

    python scripts/generator_speed.py MODEL.onnx [--rounds 4] [--threads 2] [--json OUT]

Engines run in alternating rounds so that drift of the machine hits all of them alike. Rows:
onnxruntime CPU fp32 on the exported graph (the live path before OpenVINO), OpenVINO fp32 on the
exported graph and on the phase-split graph, OpenVINO bf16 (where the CPU has native bf16) and
int8 (where ``face2face quantize`` made the copy).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from face2face.runtime.generator import OrtEngine, open_session
from face2face.runtime.openvino_engine import (OpenVinoEngine, core, cpu_capabilities, cpu_name, int8_is_current,
                                               read_phase_model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--runs", type=int, default=15, help="timed runs per engine per round")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json")
    args = parser.parse_args()
    engines = {
        "onnxruntime fp32, exported graph": OrtEngine(open_session(args.model, False, args.threads)),
        "OpenVINO fp32, exported graph": OpenVinoEngine(core().read_model(args.model), "fp32", args.threads),
        "OpenVINO fp32, phase graph": OpenVinoEngine(read_phase_model(args.model), "fp32", args.threads),
    }
    if "BF16" in cpu_capabilities():
        engines["OpenVINO bf16, exported graph"] = OpenVinoEngine(core().read_model(args.model), "bf16", args.threads)
        engines["OpenVINO bf16, phase graph"] = OpenVinoEngine(read_phase_model(args.model), "bf16", args.threads)
    if int8_is_current(args.model):
        engines["OpenVINO int8, phase graph"] = OpenVinoEngine.open(args.model, "int8", args.threads)
    phases = engines["OpenVINO fp32, phase graph"]
    x = np.random.default_rng(0).uniform(-1, 1, phases.input_shapes[0]).astype(np.float32)
    y = np.empty(phases.output_shapes[0], np.float32)  # 3 channels; the input has 6 with a reference
    times: dict[str, list[float]] = {name: [] for name in engines}
    for engine in engines.values():
        engine.bind(x, y)
    for _ in range(args.rounds):
        for name, engine in engines.items():
            for _ in range(3):
                engine.run()
            for _ in range(args.runs):
                started = time.perf_counter()
                engine.run()
                times[name].append(time.perf_counter() - started)
    report = {"model": args.model, "cpu": cpu_name(), "capabilities": sorted(cpu_capabilities()),
              "median_ms": {name: round(float(np.median(t)) * 1000, 2) for name, t in times.items()}}
    for name, ms in report["median_ms"].items():
        print(f"{name:34s} {ms:7.2f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
