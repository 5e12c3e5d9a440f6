"""Load a SambaY checkpoint from a Hugging Face folder (or a Hub id, pinned) into SambaYForCausalLM.

Layout: config.json, model.safetensors or shards + model.safetensors.index.json. Every tensor name and
shape is checked against the config first, with one message listing everything that is wrong. Tensors
are read one at a time from the memory-mapped file straight into their final dtype, and the model is
built on the meta device, so peak memory is about one copy of the weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from model_backends.sambay.errors import CheckpointError

from ..ops.dispatch import AUTO, Ops
from .config import SambaYConfig
from .model import SambaYForCausalLM

PUBLISHED_REPO = "microsoft/Phi-4-mini-flash-reasoning"
# The Hub revision the public ports replicate (sambay.md 0, MOB).
PUBLISHED_REVISION = "1dff8163d28ec880ca2411c474ddc0a927792810"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


def resolve_checkpoint(path: str | Path, revision: str | None = None) -> Path:
    """A local folder as is; otherwise a Hub id downloaded with huggingface_hub at a pinned revision."""
    local = Path(path).expanduser()
    if local.is_dir():
        return local
    name = str(path)
    if local.exists() or name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise CheckpointError(f"checkpoint folder {path} not found; pass a folder with config.json")
    if revision is None and name == PUBLISHED_REPO:
        revision = PUBLISHED_REVISION
    try:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.safetensors", "*.jinja", "tokenizer*"]
        return Path(snapshot_download(name, revision=revision, allow_patterns=patterns))
    except Exception as err:  # offline, unknown repo, auth: all end the same way for the user
        raise CheckpointError(
            f"cannot download {name}@{revision or 'main'} from the Hugging Face Hub "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); without network access, "
            "download it elsewhere and pass the local folder"
        ) from err


def _weight_files(folder: Path) -> dict[str, Path]:
    """tensor name -> safetensors file, from the shard index or the single file's header."""
    from safetensors import safe_open

    index = folder / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, ValueError, KeyError) as err:
            raise CheckpointError(f"cannot read {index}: {err}; re-download the checkpoint") from err
        return {name: folder / file for name, file in weight_map.items()}
    single = folder / SINGLE_FILE
    if not single.is_file():
        raise CheckpointError(
            f"{folder} has neither {SINGLE_FILE} nor {INDEX_FILE}; is this a SambaY checkpoint?"
        )
    try:
        with safe_open(str(single), framework="pt") as f:
            return dict.fromkeys(f.keys(), single)
    except Exception as err:
        raise CheckpointError(f"cannot read {single}: {err}; the file is damaged, re-download it") from err


def _tensor_shapes(files: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(set(files.values())):
        try:
            with safe_open(str(file), framework="pt") as f:
                for name in f.keys():  # noqa: SIM118 (safe_open is not a dict)
                    shapes[name] = tuple(f.get_slice(name).get_shape())
        except Exception as err:
            raise CheckpointError(f"cannot read {file}: {err}; the file is damaged, re-download it") from err
    missing_in_files = sorted(set(files) - set(shapes))
    if missing_in_files:
        raise CheckpointError(
            f"{INDEX_FILE} lists tensors that no shard holds: {', '.join(missing_in_files[:5])}; re-download"
        )
    return shapes


def check_tensors(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], optional: set[str], where: Path
) -> None:
    """Raise one CheckpointError naming every missing, unexpected and mis-shaped tensor."""

    def listing(names: list[str]) -> str:
        return ", ".join(names[:8]) + (f" (+{len(names) - 8} more)" if len(names) > 8 else "")

    missing = sorted(set(expected) - set(found) - optional)
    unexpected = sorted(set(found) - set(expected))
    misshaped = [
        f"{name} {list(found[name])} (expected {list(shape)})"
        for name, shape in sorted(expected.items())
        if name in found and tuple(found[name]) != shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {listing(unexpected)}")
    if misshaped:
        problems.append(f"{len(misshaped)} mis-shaped: {listing(misshaped)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {where} does not match its config.json: "
            + "; ".join(problems)
            + "; is the folder complete and for this architecture?"
        )


def load_model(
    path: str | Path,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    revision: str | None = None,
    ops: Ops = AUTO,
) -> SambaYForCausalLM:
    """The checkpoint at `path` (a folder, or a Hub id downloaded at a pinned revision), running `ops`."""
    from safetensors import safe_open

    folder = resolve_checkpoint(path, revision)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{folder} has no config.json; pass a Hugging Face checkpoint folder")
    config = SambaYConfig.from_json(config_file)
    model = SambaYForCausalLM(config, dtype=dtype, device="meta", ops=ops)
    params = dict(model.named_parameters(remove_duplicate=False))
    expected = {name: tuple(p.shape) for name, p in params.items()}
    optional = {"lm_head.weight"} if config.tie_word_embeddings else set()
    files = _weight_files(folder)
    check_tensors(expected, _tensor_shapes(files), optional, folder)

    state: dict[str, torch.Tensor] = {}
    by_file: dict[Path, list[str]] = {}
    for name, file in files.items():
        by_file.setdefault(file, []).append(name)
    for file, names in by_file.items():
        try:
            with safe_open(str(file), framework="pt", device="cpu") as f:
                for name in names:
                    if name == "lm_head.weight" and config.tie_word_embeddings:
                        continue  # tied: the embedding is the head
                    target = params[name].dtype  # fp32 for A_log, D, lambda_*; `dtype` otherwise
                    state[name] = f.get_tensor(name).to(device=device, dtype=target)
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(f"cannot read {file}: {err}; the file is damaged, re-download it") from err
    model.load_state_dict(state, strict=False, assign=True)
    if config.tie_word_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    leftover = [name for name, p in model.named_parameters() if p.is_meta]
    if leftover:  # cannot happen after check_tensors; guards against a loader bug
        raise CheckpointError(f"parameters left unloaded: {', '.join(leftover[:5])}")
    return model.eval()
