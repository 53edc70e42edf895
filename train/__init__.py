"""The offline side: dataset preparation, pix2pix training, ONNX export and evaluation.

Only ``pix2pix``, ``data``, ``trainer`` and ``export`` import TensorFlow (the ``train`` extra).
"""
