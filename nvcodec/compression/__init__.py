"""Compression: tensors ⇄ integers ⇄ bytes (quantiser, entropy models, tensor sections)."""

from nvcodec.compression.quantize import QuantizedTensor, dequantize, quantize
from nvcodec.compression.tensors import (
    EncodedTensors,
    TensorCost,
    TensorStat,
    decode_tensors,
    encode_quantized,
    encode_tensors,
    read_table,
    tensor_costs,
)

__all__ = [
    "EncodedTensors",
    "QuantizedTensor",
    "TensorCost",
    "TensorStat",
    "decode_tensors",
    "dequantize",
    "encode_quantized",
    "encode_tensors",
    "quantize",
    "read_table",
    "tensor_costs",
]
