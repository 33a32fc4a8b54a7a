"""funcorr: dense functional and semantic correspondence between object images."""

__version__ = "0.1.0"
