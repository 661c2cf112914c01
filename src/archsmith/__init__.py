"""archsmith: build, measure, compress and search efficient neural networks in PyTorch."""

__version__ = "0.1.0"
