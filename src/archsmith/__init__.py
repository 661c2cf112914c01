"""archsmith: build, measure, compress and search efficient neural networks in PyTorch.

The package is a stack of floors, each importing only those below it (``ARCHITECTURE.md``):
``errors`` -> ``io``, ``argtypes`` -> ``options`` -> ``registry`` -> ``tasks`` -> ``spec`` -> ``build``, ``cost``,
``checkpoint``, ``measure`` -> ``layers`` -> ``models`` -> ``blocks`` -> the families
(``selfnorm``, ``reversible``, ``tensornet``, ``gating``) -> ``train`` -> ``bench`` -> ``cli``.
"""

__version__ = "0.1.0"
