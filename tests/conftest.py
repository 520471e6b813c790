"""Shared fixtures. Tests run single-threaded so that timings and results do not
depend on how many cores a machine has."""
import torch

torch.set_num_threads(1)
