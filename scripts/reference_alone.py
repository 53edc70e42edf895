"""`face2face evaluate`'s figures for a model's reference alone: the face is the reference the model's
bank builds for each test pair's landmarks, with no network (what the generator must beat).

    python scripts/reference_alone.py work/model.onnx work/data [--json out.json]
"""

from __future__ import annotations

import argparse

import numpy as np

from face2face.runtime.generator import Generator
from face2face.train import evaluate


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
    parser.add_argument("--json", help="every figure as JSON")
    args = parser.parse_args()
    evaluate.Generator = ReferenceAlone  # evaluate's own loop, on the reference
    report = evaluate.evaluate(args.model, args.data, evaluate.EvaluateConfig(provider="cpu"), json_path=args.json)
    print(evaluate.format_table(report))


if __name__ == "__main__":
    main()
