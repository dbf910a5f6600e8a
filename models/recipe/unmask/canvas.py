"""The canvases the eval and rl decode, as the engine builds them (models/README.md): the denoiser's
`[lang tag] prefix [MASK]*bucket suffix`, the AR baseline's PSM prompt, and the span-length bucket of a task.
Runs nothing on its own. `m` is a checkpoint.Loaded (tokenizer, special ids, max_seq_len)."""

from __future__ import annotations

import json
import os
from typing import Optional

from unmask import common
from unmask.checkpoint import Loaded, special_id


def editor_span_tokens() -> int:
    """The editor's default span (`unmask.maxSpanTokens` in package.json), what `--bucket default` gives every task."""
    try:
        with open(os.path.join(common.REPO_DIR, "package.json"), encoding="utf-8") as f:
            config = json.load(f)["contributes"]["configuration"]
        for section in config if isinstance(config, list) else [config]:
            if "unmask.maxSpanTokens" in section.get("properties", {}):
                return int(section["properties"]["unmask.maxSpanTokens"]["default"])
    except (OSError, KeyError, ValueError, TypeError):
        pass
    return 32


def bucket_for(n_tokens: int, buckets: tuple[int, ...], fixed: Optional[int]) -> int:
    """The smallest bucket that holds n_tokens (the last one when none does), or `fixed` when given."""
    if fixed is not None:
        return fixed
    for b in buckets:
        if b >= max(n_tokens, 1):
            return b
    return buckets[-1]


def denoiser_canvas(m: Loaded, task: dict, bucket: int) -> tuple[list[int], int]:
    """[lang tag] prefix [MASK]*bucket suffix (models/README.md) -> (ids, index of the span's first token)."""
    head = [m.lang_id(task["language"])] + m.encode(task["prefix"])
    ids = head + [m.mask_id] * bucket + m.encode(task["suffix"])
    if len(ids) > m.max_seq_len:
        raise ValueError(f"task {task['id']}: canvas of {len(ids)} tokens exceeds max_seq_len {m.max_seq_len}; "
                         f"cut the tasks with scripts.data_tasks --max-seq-len {m.max_seq_len}")
    return ids, len(head)


def ar_prompt(m: Loaded, task: dict) -> list[int]:
    """PSM fill-in-the-middle prompt as train_pretrain.py trains it: [lang] <|fim_prefix|> pre <|fim_suffix|> suf
    <|fim_middle|>; the model then writes the middle and <|eos|>."""
    return ([m.lang_id(task["language"]), special_id(m.special, "fim_prefix")] + m.encode(task["prefix"])
            + [special_id(m.special, "fim_suffix")] + m.encode(task["suffix"]) + [special_id(m.special, "fim_middle")])
