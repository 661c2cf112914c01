"""Baseline models for every task, registered with :func:`archsmith.registry.register_model`.

- ``mlp`` — multilayer perceptron on flattened inputs.
- ``cnn`` — small convolutional network for images.
- ``transformer`` — pre-norm softmax-attention Transformer (tokens, image rows, or features),
  over :class:`Transformer`, the builder every Transformer-like model of the families shares.
- ``cox_mlp`` — MLP risk model for survival tasks (Cox proportional hazards).
"""

from archsmith.models.cnn import SmallCNN, cnn
from archsmith.models.cox import cox_mlp
from archsmith.models.mlp import MLP, mlp
from archsmith.models.transformer import (
    SequenceEmbedding,
    StackLayer,
    Transformer,
    TransformerBlock,
    transformer,
    transformer_stack,
)

__all__ = [
    "MLP",
    "SequenceEmbedding",
    "SmallCNN",
    "StackLayer",
    "Transformer",
    "TransformerBlock",
    "cnn",
    "cox_mlp",
    "mlp",
    "transformer",
    "transformer_stack",
]
