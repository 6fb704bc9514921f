"""Export the inference network of one label domain to ONNX or TorchScript (dynamic batch and size)."""

from .exporters import export_model, DomainLogits

__all__ = ["export_model", "DomainLogits"]
