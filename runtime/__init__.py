"""The online side: ONNX generator, retargeting, live loop, sinks and benchmark (no TensorFlow)."""
