"""face2face: learn a target face with pix2pix and drive it live from a webcam."""

__version__ = "0.1.0"
