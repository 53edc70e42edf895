"""`face2face evaluate`'s figures for a model's reference alone: the face is the reference the model's
bank builds for each test pair's landmarks, with no network (what the generator must beat); with
``--driver``, the cross-driver figures of the reference as live builds it (its steadiness above all).

    python scripts/reference_alone.py work/model.onnx work/data [--driver VIDEO] [--json out.json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from face2face.runtime.generator import Generator
from face2face.train import crossdrive, evaluate


class ReferenceAlone(Generator):
    """A generator whose face is its reference (the engine is never run)."""

    def __call__(self, sketch: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        if self.bank is None:
            raise SystemExit(f"{self.model}: reads the sketch alone; it has no reference")
        return self.neutral_reference if reference is None else reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--driver", help="a driver video: the cross-driver figures instead")
    parser.add_argument("--json", help="every figure as JSON")
    args = parser.parse_args()
    if args.driver:
        crossdrive.Generator = ReferenceAlone  # live's own loop, on the reference
        report = crossdrive.cross_drive(args.model, args.data, args.driver,
                                        crossdrive.CrossDriveConfig(provider="cpu", modes=("relative",)))
        print(crossdrive.format_cross_drive(report))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        return
    evaluate.Generator = ReferenceAlone  # evaluate's own loop, on the reference
    report = evaluate.evaluate(args.model, args.data, evaluate.EvaluateConfig(provider="cpu"), json_path=args.json)
    print(evaluate.format_table(report))


if __name__ == "__main__":
    main()
