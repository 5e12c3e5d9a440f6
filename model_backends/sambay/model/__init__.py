"""The SambaY model: config.py (SambaYConfig, layer_plan), layers.py, model.py (SambaYForCausalLM),
state.py (the slot-indexed StatePool), loader.py (checkpoint folders) and tokenizer.py."""

from model_backends.sambay.model.config import SambaYConfig, layer_plan
from model_backends.sambay.model.model import SambaYForCausalLM

__all__ = ["SambaYConfig", "SambaYForCausalLM", "layer_plan"]
