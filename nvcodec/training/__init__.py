"""Training: the overfitting loop, its schedule and optimisers. Never imported by the decoder."""

from nvcodec.training.adan import Adan
from nvcodec.training.loop import EpochStats, TrainConfig, TrainResult, train
from nvcodec.training.schedule import cosine_with_warmup

__all__ = ["Adan", "EpochStats", "TrainConfig", "TrainResult", "cosine_with_warmup", "train"]
