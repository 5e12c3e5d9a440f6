"""Built-in SambaY (Phi-4-mini-flash-reasoning) engine, shaped after nano-vllm.

model/    the model: config.py (SambaYConfig, layer_plan: the architecture in one place), layers.py
          (DecoderLayer), mamba.py and attention.py (each layer kind with its own prefill / decode),
          state.py (the slot-indexed StatePool and the view each layer gets), context.py, model.py
          (SambaYForCausalLM), loader.py (checkpoint folders), tokenizer.py (chat prompt, stop tokens)
ops/      kernels: each op a Triton kernel and its pure-PyTorch `_ref`; dispatch.py (the Ops mode)
engine/   requests to finished sequences: request.py, llm_engine.py (step = schedule -> run ->
          postprocess), scheduler.py, model_runner.py, sequence.py, sampler.py, graphs.py, config.py
errors.py the engine's own errors
backend.py the harness's Backend over the engine (the only file here that imports the harness)
testing.py tiny random checkpoints in the published layout (tests, demo, benchmarks)
"""
