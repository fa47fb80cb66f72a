"""Models: pure ``nn.Module``s built from frozen configs, looked up by stable string ids."""

from nvcodec.models.budget import count_parameters, parse_size, solve_config, solve_sizing
from nvcodec.models.config import ModelConfig
from nvcodec.models.registry import (
    build_model,
    config_from_dict,
    get_spec,
    model_ids,
    training_defaults,
)

__all__ = [
    "ModelConfig",
    "build_model",
    "config_from_dict",
    "count_parameters",
    "get_spec",
    "model_ids",
    "parse_size",
    "solve_config",
    "solve_sizing",
    "training_defaults",
]
