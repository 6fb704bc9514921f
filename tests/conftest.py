"""Shared test set-up: CPU, two threads, no network."""

import torch

torch.set_num_threads(2)
