"""SambaY (Phi-4-mini-flash-reasoning) model configuration.

One frozen dataclass parsed from the published `config.json`, plus `layer_plan`, the explicit 32-layer
schedule of sambay.md section 2 so the architecture can be read in one place.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from model_backends.sambay.errors import ConfigError

# Layer kinds, in the order they first appear in the schedule.
MAMBA = "mamba"  # Mamba-1 block of the self-decoder (owns conv + SSM state)
SWA_ATTN = "swa_attn"  # sliding-window differential attention (owns a ring of K/V)
MAMBA_MEMORY = "mamba_memory"  # Mamba-1 block at L/2 that also exports its ungated output as GMU memory
FULL_ATTN = "full_attn"  # the single full differential attention at L/2+1; its K/V are shared (YOCO)
GMU = "gmu"  # gated memory unit of the cross-decoder (no state)
CROSS_ATTN = "cross_attn"  # Q-only differential attention reading the full-attention layer's K/V

# Layers whose residual is promoted to fp32 before the add (sambay.md 4.2 step 3).
SSM_KINDS = frozenset({MAMBA, MAMBA_MEMORY, GMU})

# config.json `model_type` values of SambaY checkpoints (the published one says phi4flash). Another
# model_type is another architecture, whose tensors could even happen to load: refuse it by name.
MODEL_TYPES = ("phi4flash", "sambay")


@dataclass(frozen=True)
class SambaYConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    sliding_window: int  # keys seen by a SWA layer, *including* the current token (sambay.md 4.6)
    # The context the checkpoint declares (published: 262144; no positional encoding enforces it), the
    # engine's limit on prompt + max_new_tokens. None when config.json does not say.
    max_position_embeddings: int | None = None
    layer_norm_eps: float = 1e-5
    tie_word_embeddings: bool = True
    mb_per_layer: int = 2
    # The published config.json has no mamba_* fields; these are the config-class defaults (sambay.md 1.1).
    mamba_d_state: int = 16
    mamba_d_conv: int = 4
    mamba_expand: int = 2
    mamba_dt_rank: int = 0  # 0 = "auto" -> ceil(hidden_size / 16), resolved in __post_init__
    mamba_conv_bias: bool = True
    mamba_proj_bias: bool = False
    pad_token_id: int | None = 0
    bos_token_id: int | None = None  # config.json's values are class defaults, NOT the real tokens
    eos_token_id: int | tuple[int, ...] | None = None
    torch_dtype: str = "bfloat16"

    def __post_init__(self) -> None:
        if self.mamba_dt_rank in (0, "auto", None):
            object.__setattr__(self, "mamba_dt_rank", math.ceil(self.hidden_size / 16))
        L = self.num_hidden_layers
        if L < 4 or L % 4 != 0:
            raise ConfigError(
                f"SambaY config: num_hidden_layers={L} must be a positive multiple of 4 "
                "(self-decoder, memory Mamba, full attention and cross-decoder halves); fix config.json"
            )
        if self.mb_per_layer != 2:
            raise ConfigError(f"SambaY config: mb_per_layer={self.mb_per_layer} unsupported; only 2 exists")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError("SambaY config: hidden_size must be divisible by num_attention_heads")
        heads, kv_heads = self.num_attention_heads, self.num_key_value_heads
        # Differential attention splits Q and K/V heads into two interleaved halves, GQA inside each half.
        if heads % 2 or kv_heads % 2 or heads % kv_heads:
            raise ConfigError(
                f"SambaY config: need even num_attention_heads ({heads}) and num_key_value_heads "
                f"({kv_heads}) with heads divisible by kv heads (differential attention halves)"
            )
        if self.sliding_window < 1:
            raise ConfigError(f"SambaY config: sliding_window={self.sliding_window} must be >= 1")
        limit = self.max_position_embeddings
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"SambaY config: max_position_embeddings={limit!r} must be a positive integer")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def d_inner(self) -> int:
        return self.mamba_expand * self.hidden_size

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SambaYConfig:
        """Parse a config.json dict. Unknown keys are ignored (rope_theta etc. are vestigial); a
        `model_type` other than SambaY's is refused (a dict without one is taken as SambaY)."""
        model_type = d.get("model_type")
        if model_type is not None and model_type not in MODEL_TYPES:
            raise ConfigError(
                f"model_type {model_type!r} is not a SambaY (phi4flash) checkpoint, the only kind the "
                "sambay backend runs; use --backend hf for this model"
            )
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        required = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers")
        missing = [k for k in required + ("num_attention_heads",) if k not in d]
        if missing:
            raise ConfigError(
                f"SambaY config is missing {', '.join(missing)}; is this a Phi4Flash config.json?"
            )
        kwargs.setdefault("num_key_value_heads", d["num_attention_heads"])
        kwargs["sliding_window"] = _parse_sliding_window(d.get("sliding_window"), d["num_hidden_layers"])
        if isinstance(kwargs.get("eos_token_id"), list):  # keep the frozen config hashable
            kwargs["eos_token_id"] = tuple(kwargs["eos_token_id"])
        if kwargs.get("mamba_dt_rank") == "auto":
            kwargs["mamba_dt_rank"] = 0
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> SambaYConfig:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read SambaY config {path}: {err}") from err
        if not isinstance(d, dict):
            raise ConfigError(f"{path} is not a JSON object; is this a checkpoint's config.json?")
        try:
            return cls.from_dict(d)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    @classmethod
    def published(cls) -> SambaYConfig:
        """microsoft/Phi-4-mini-flash-reasoning (sambay.md 1.1)."""
        return cls.from_dict(PUBLISHED_CONFIG)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _parse_sliding_window(value: Any, num_layers: int) -> int:
    """Both published forms: a scalar, or the per-layer list written by the original config class
    (window on odd layers < L/2, None elsewhere). Either way one window applies to all SWA layers."""
    if value is None:
        raise ConfigError("SambaY config has no sliding_window; the SWA layers need one (published: 512)")
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        windows = {w for w in value if w is not None}
        if len(value) != num_layers or len(windows) != 1:
            raise ConfigError(
                f"SambaY config: per-layer sliding_window list must have {num_layers} entries and one "
                f"window value, got {value!r}"
            )
        return windows.pop()
    raise ConfigError(f"SambaY config: sliding_window must be an int or a per-layer list, got {value!r}")


def layer_plan(config: SambaYConfig) -> tuple[str, ...]:
    """The explicit schedule: even layers SSM-type, odd layers attention-type; the first half is the
    self-decoder (Mamba / SWA), layer L/2 is the memory-producing Mamba, L/2+1 the full attention whose
    K/V the cross-decoder (GMU / cross attention, layers >= L/2+2) reuses."""
    half = config.num_hidden_layers // 2
    plan = []
    for idx in range(config.num_hidden_layers):
        if idx < half:
            plan.append(MAMBA if idx % 2 == 0 else SWA_ATTN)
        elif idx == half:
            plan.append(MAMBA_MEMORY)
        elif idx == half + 1:
            plan.append(FULL_ATTN)
        else:
            plan.append(GMU if idx % 2 == 0 else CROSS_ATTN)
    return tuple(plan)


def lambda_init(layer_idx: int) -> float:
    """Differential-attention lambda_init by *global* layer index (sambay.md 2)."""
    return 0.8 - 0.6 * math.exp(-0.3 * layer_idx)


# The architecture-relevant subset of the published config.json (sambay.md 1.1); mamba_* are defaults.
PUBLISHED_CONFIG: dict[str, Any] = {
    "architectures": ["Phi4FlashForCausalLM"],
    "model_type": "phi4flash",
    "vocab_size": 200064,
    "hidden_size": 2560,
    "intermediate_size": 10240,
    "num_hidden_layers": 32,
    "num_attention_heads": 40,
    "num_key_value_heads": 20,
    "sliding_window": 512,
    "max_position_embeddings": 262144,
    "hidden_act": "silu",
    "layer_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}
