"""Export the inference network of one label domain to ONNX or TorchScript (dynamic batch and size)."""

from .exporters import DomainLogits, ExportError, check_export, export_model, load_exported

__all__ = ["DomainLogits", "ExportError", "check_export", "export_model", "load_exported"]
