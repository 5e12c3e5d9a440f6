"""A tiny llama GGUF file written with the `gguf` package: the tiny random Llama of test_hf_backend (same
weights, the fixture byte-level BPE tokenizer and chat template) in llama.cpp's single-file layout."""

from __future__ import annotations

import json
from pathlib import Path

# Hugging Face Llama tensor names -> GGUF names (llama.cpp's convert script), per layer and global.
_LAYER = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_GLOBAL = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}


def _permute(weight, heads: int):
    """llama.cpp stores q/k rows interleaved for its rope; transformers undoes this on load."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def _gguf_name(name: str) -> str:
    if name in _GLOBAL:
        return _GLOBAL[name]
    if name == "lm_head.weight":
        return "output.weight"
    _, _, index, *rest = name.split(".")
    part, kind = ".".join(rest[:-1]), rest[-1]
    return f"blk.{index}.{_LAYER[part]}.{kind}"


def write_tiny_gguf(folder: Path, file: Path) -> Path:
    """`folder` (make_tiny_llama) as the GGUF `file`; returns `file`."""
    import gguf
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from model_backends.sambay.testing import CHAT_TEMPLATE

    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = model.config
    writer = gguf.GGUFWriter(str(file), "llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = sorted(spec["model"]["vocab"].items(), key=lambda item: item[1])
    special = {token["content"] for token in spec["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types(
        [gguf.TokenType.CONTROL if token in special else gguf.TokenType.NORMAL for token, _ in vocab]
    )
    merges = spec["model"]["merges"]
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    ids = tokenizer.get_vocab()
    writer.add_bos_token_id(ids["<|endoftext|>"])
    writer.add_eos_token_id(ids["<|end|>"])
    writer.add_pad_token_id(ids["<|endoftext|>"])
    writer.add_chat_template(CHAT_TEMPLATE)

    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    for name, tensor in model.state_dict().items():
        weight = tensor.detach().numpy()
        if name.endswith("q_proj.weight"):
            weight = _permute(weight, heads)
        elif name.endswith("k_proj.weight"):
            weight = _permute(weight, kv_heads)
        writer.add_tensor(_gguf_name(name), weight)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return file
