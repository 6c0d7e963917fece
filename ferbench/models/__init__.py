"""Models: ``create_model(name, num_classes, in_chans)`` over the ``MODELS`` registry; one module per family,
registered by importing it here (one import line each)."""

from ._registry import MODELS, adapt_cfg, create_model, list_models, model_cfg, model_version, no_pretrained_weights, register_model
from . import tiny  # noqa: F401  (registers tiny_cnn, tiny_vit)
from . import cct  # noqa: F401  (report 000: mcct_1/2/3/6/7, vcct_1/2)
from . import fer_cnn  # noqa: F401  (reports 001/004: fer_cnn, fer_cnn_v21)
from . import small_vit  # noqa: F401  (reports 001/004: fer_vit, vit_b16_mlp5)
from . import rgbd_fusion  # noqa: F401  (report 003: rgbd_effnet_b2*, rgbd_fusion_tiny)

__all__ = ["MODELS", "adapt_cfg", "create_model", "list_models", "model_cfg", "model_version", "no_pretrained_weights", "register_model"]
