"""The DiDi-Instruct discriminator: a copy of the teacher's backbone that scores every token of a (re-noised) canvas
with one logit, "how much does this look like a teacher sample rather than a student sample at noise level t".

Not a stage of its own: train_distill.py trains it, guided.py samples with it, export_disc.py exports it. Built from the
teacher (methods.md section 2):
- token embedding and blocks copied from the teacher; only the last `trainable_blocks` blocks and the final norm are
  trained, the embedding and the blocks below stay frozen (they already know code, and freezing them keeps the
  discriminator from overpowering the student);
- time conditioning: a sinusoidal embedding of the noise level t -> MLP -> per-channel scale and shift of the hidden
  states entering the first trainable block (adaLN style, zero-initialised so training starts from the teacher's
  features);
- the vocabulary head is replaced by a spectral-normalised MLP d -> d -> 1 (one logit per token): spectral norm
  bounds the head's Lipschitz constant, which keeps the log-odds (the student's reward) smooth;
- full bidirectional attention always, whatever the teacher used: the discriminator is not run step by step with a
  cached context, and its contract has no span input.

Logit > 0 means "teacher" (the class trained as real). Checkpoints (runs/<name>/disc.pt) hold {"model", "config"
(the teacher's config with kind "disc" and a "disc" entry), "special", ...}; `load_discriminator` rebuilds them.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from unmask import checkpoint
from unmask.model import build_model, rope_tables


def default_trainable_blocks(n_layer: int) -> int:
    """The paper trains the last 4 blocks of a 12-layer teacher; a small teacher keeps its lower half frozen."""
    return max(1, min(4, n_layer // 2))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t: [B] float in [0, 1] -> [B, dim] sinusoidal features (t is scaled by 1000 as in diffusion models so the
    low frequencies still resolve small differences in t)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None, :]  # [B, half]
    emb = torch.cat([args.cos(), args.sin()], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class Discriminator(nn.Module):
    """input ids [B, T] + noise level t [B] -> per-token logits. See the module docstring."""

    def __init__(self, config: dict, trainable_blocks: int, spectral: bool = True):
        super().__init__()
        base = {**config, "kind": "mdm", "attention": "full"}
        self.backbone = build_model(base)  # embed, blocks, norm (its tied vocabulary projection is never used)
        self.config = dict(self.backbone.config)
        n_layer, d = self.config["n_layer"], self.config["d_model"]
        if not 1 <= trainable_blocks <= n_layer:
            raise ValueError(f"trainable_blocks must be in 1..{n_layer}, got {trainable_blocks}")
        self.trainable_blocks = trainable_blocks
        self.n_frozen = n_layer - trainable_blocks
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, 2 * d))
        nn.init.zeros_(self.time_mlp[2].weight)  # scale = shift = 0: the teacher's features at the start
        nn.init.zeros_(self.time_mlp[2].bias)
        sn = spectral_norm if spectral else (lambda m: m)
        self.head = nn.Sequential(sn(nn.Linear(d, d)), nn.GELU(), sn(nn.Linear(d, 1)))
        self.freeze_lower()

    @classmethod
    def from_teacher(cls, teacher: nn.Module, trainable_blocks: int) -> "Discriminator":
        disc = cls(teacher.config, trainable_blocks)
        state = {k: v for k, v in teacher.state_dict().items()}
        disc.backbone.load_state_dict(state)
        disc.freeze_lower()
        return disc

    def freeze_lower(self) -> None:
        """Freezes the embedding and the lower blocks; the rest (last blocks, final norm, time MLP, head) trains."""
        for p in self.parameters():
            p.requires_grad_(True)
        self.backbone.embed.weight.requires_grad_(False)
        for block in self.backbone.blocks[: self.n_frozen]:
            for p in block.parameters():
                p.requires_grad_(False)

    def disc_config(self) -> dict:
        """The checkpoint/metadata config: the backbone's config with kind "disc"."""
        return {**self.config, "kind": "disc", "disc": {"trainable_blocks": self.trainable_blocks,
                                                        "time_conditioning": "sinusoid-mlp-scale-shift",
                                                        "head": "spectral-norm mlp d->d->1"}}

    def features(self, x_emb: torch.Tensor, t: torch.Tensor, key_padding_mask: torch.Tensor | None = None):
        """x_emb: [B, T, D] token embeddings (soft ones for gradient tilting), t: [B] -> hidden states [B, T, D]."""
        B, T, D = x_emb.shape
        cfg = self.config
        cos, sin = rope_tables(T, D // cfg["n_head"], cfg["rope_base"], x_emb.device)
        allowed = None
        if key_padding_mask is not None and bool(key_padding_mask.any()):
            allowed = ~key_padding_mask[:, None, None, :]  # [B, 1, 1, T]
        x = x_emb
        blocks = self.backbone.blocks
        for block in blocks[: self.n_frozen]:
            x = block(x, cos, sin, allowed, False)
        emb_t = timestep_embedding(t, cfg["d_model"]).to(x.dtype)  # [B, D]
        scale, shift = self.time_mlp(emb_t).chunk(2, dim=-1)  # 2x [B, D]
        x = x * (1 + scale[:, None, :]) + shift[:, None, :]
        for block in blocks[self.n_frozen:]:
            x = block(x, cos, sin, allowed, False)
        return self.backbone.norm(x)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.backbone.embed(input_ids)

    def score_embeddings(self, x_emb: torch.Tensor, positions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_emb [B, T, D], positions [B, P] long, t [B] -> logits [B, P] (float32)."""
        h = self.features(x_emb, t)
        index = positions.unsqueeze(-1).expand(-1, -1, h.shape[-1])  # [B, P, D]
        return self.head(torch.gather(h, 1, index)).squeeze(-1).float()

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The exported signature: input_ids [B, T] long, positions [B, P] long, t [B] float -> scores [B, P]."""
        return self.score_embeddings(self.embed(input_ids), positions, t)

    def flat_logits(self, input_ids: torch.Tensor, t: torch.Tensor, sel: torch.Tensor,
                    key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Training form: logits [N] at the flat indices `sel` [N] into [B*T] (rows may have different spans)."""
        h = self.features(self.embed(input_ids), t, key_padding_mask)  # [B, T, D]
        return self.head(h.reshape(-1, h.shape[-1])[sel]).squeeze(-1).float()

    def baked(self) -> "Discriminator":
        """A copy in eval mode with the spectral norm folded into plain weights (W / sigma from the stored
        power-iteration vectors, as an eval-mode forward computes it), for ONNX export. Built fresh rather than by
        removing the parametrization from a deep copy: the copy would share, and strip, the original's class."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            state = {k: v for k, v in self.state_dict().items() if not k.startswith("head.")}
            for i in (0, 2):
                state[f"head.{i}.weight"] = self.head[i].weight.detach().clone()
                state[f"head.{i}.bias"] = self.head[i].bias.detach().clone()
        self.train(was_training)
        d = Discriminator(self.config, self.trainable_blocks, spectral=False)
        d.load_state_dict(state)
        return d.to(next(self.parameters()).device).eval()


def load_discriminator(path: str, device: str | torch.device = "cpu") -> tuple[Discriminator, dict]:
    """Returns (discriminator in eval mode, checkpoint dict) for a disc.pt written by train_distill."""
    ckpt = checkpoint.read(path, device)
    cfg = ckpt["config"]
    if cfg.get("kind") != "disc":
        raise ValueError(f"{path} is a {cfg.get('kind')!r} checkpoint, not a discriminator (kind 'disc')")
    disc = Discriminator(cfg, int(cfg["disc"]["trainable_blocks"]))
    disc.load_state_dict(ckpt["model"])
    disc.to(device).eval()
    return disc, ckpt
