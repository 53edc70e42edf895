"""The live loop with its stages in turn and overlapped, alternating in one process, and the seed
loop after each pair: fps and latency p50 per plan and round.

    python scripts/overlap_speed.py work/model.onnx ../shared/data/videos/lp_s18.mp4 [--rounds 2] [--json OUT]

Each plan is what ``--overlap off`` and ``--overlap on`` run: in turn, the generator on every core;
overlapped, on every core but the loop's own.
"""

from __future__ import annotations

import argparse
import json

from face2face.faces import FaceAnalyzer
from face2face.runtime.bench import BenchConfig, run_bench
from face2face.runtime.generator import Generator
from face2face.runtime.pipeline import PuppetConfig, loop_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("source")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json")
    args = parser.parse_args()
    puppet = PuppetConfig(layout="frame", width=1280, height=720)
    analyzer = FaceAnalyzer()
    plans = {name: loop_plan(name) for name in ("off", "on")}
    generators = {name: Generator(args.model, threads=plan.threads, layout="frame", announce=False)
                  for name, plan in plans.items()}
    seed = Generator(args.model, provider="cpu", announce=False)
    rows = []
    for round_ in range(args.rounds):
        row = {"round": round_ + 1}
        for name, plan in plans.items():
            report = run_bench(args.model, args.source, generators[name], analyzer, puppet,
                               BenchConfig(frames=args.frames, overlap=plan.overlap))
            row[name] = {"fps": report["fps"], "latency_p50_ms": report["latency_ms"]["p50"],
                         "generator_idle_p50_ms": report["loop_ms"]["generator_idle"]["p50"]}
        row["seed_fps"] = run_bench(args.model, args.source, seed, analyzer, puppet,
                                    BenchConfig(frames=args.frames), seed=True)["fps"]
        rows.append(row)
        print(f"round {row['round']}: in turn {row['off']['fps']:.1f} fps, p50 {row['off']['latency_p50_ms']:.1f} ms; "
              f"overlapped {row['on']['fps']:.1f} fps, p50 {row['on']['latency_p50_ms']:.1f} ms; "
              f"seed loop {row['seed_fps']:.1f} fps", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "source": args.source, "rounds": rows}, f, indent=2)


if __name__ == "__main__":
    main()
