"""The drum model: a Transformer VAE in the GrooveTransformer design.

    groove [B,32,C] ─ Linear + position ─ Transformer blocks ─ flatten ─ Linear ─▶ mu, logvar [B,Z]
    z [B,Z] ─ Linear ─ [B,32,d] + position ─ Transformer blocks ─ Linear ─▶ hits, velocities, offsets [B,32,9]

Everything that shapes the model is in ModelConfig right below; the loss and its weights are in
LossConfig. Attention is written out by hand (no fused kernels) so the ONNX graphs stay plain.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from appliance.core.groove import NUM_VOICES, STEPS


@dataclass
class ModelConfig:
    d_model: int = 128         # width of every token (one token per sixteenth step)
    n_heads: int = 4
    n_layers: int = 3          # Transformer blocks in the encoder, and again in the decoder
    d_ff: int = 256            # width of the feed-forward layer of a block
    dropout: float = 0.2
    latent_size: int = 128     # Z
    steps: int = STEPS
    voices: int = NUM_VOICES
    groove_channels: int = 3   # hit, velocity, offset; 4: and the register (+1 low, −1 high, 0 nothing or unknown)


@dataclass
class LossConfig:
    pos_weight: float = 1.0    # weight of a hit cell in the hit BCE (thresholds are tuned afterwards)
    velocity_weight: float = 40.0  # per hit cell, squared error
    offset_weight: float = 80.0    # per hit cell, squared error
    beta: float = 0.05         # KL weight after annealing (low: z must carry the expression)
    warmup_epochs: int = 6     # β rises linearly from 0 to `beta` over these epochs
    free_nats: float = 48.0    # KL below this many nats per groove is free (GrooVAE's free bits)
    people_expression: float = 1.0  # weight of the velocity and offset terms on grooves a person played


class Block(nn.Module):
    """Pre-norm Transformer block: self-attention over the 32 steps, then a feed-forward layer."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.scale = 1.0 / math.sqrt(cfg.d_model // cfg.n_heads)
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(x).split(d, dim=2)
        q = q.reshape(b, t, h, d // h).transpose(1, 2)
        k = k.reshape(b, t, h, d // h).transpose(1, 2)
        v = v.reshape(b, t, h, d // h).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * self.scale
        att = self.drop(att.softmax(dim=-1))
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attention(self.ln1(x)))
        return x + self.drop(self.ff(self.ln2(x)))


class Encoder(nn.Module):
    """groove [B,32,C] → mu, logvar [B,Z]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(cfg.groove_channels, cfg.d_model)
        self.pos = nn.Parameter(torch.randn(1, cfg.steps, cfg.d_model) * 0.02)
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.n_layers)])
        self.ln = nn.LayerNorm(cfg.d_model)
        self.to_latent = nn.Linear(cfg.steps * cfg.d_model, 2 * cfg.latent_size)
        self.latent_size = cfg.latent_size

    def forward(self, groove: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.blocks(self.embed(groove) + self.pos)
        x = self.ln(x).flatten(1)
        mu, logvar = self.to_latent(x).split(self.latent_size, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """z [B,Z] → hit logits, velocities (0..1), offsets (−0.5..0.5), each [B,32,9]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.from_latent = nn.Linear(cfg.latent_size, cfg.steps * cfg.d_model)
        self.pos = nn.Parameter(torch.randn(1, cfg.steps, cfg.d_model) * 0.02)
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.n_layers)])
        self.ln = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, 3 * cfg.voices)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.from_latent(z).reshape(-1, self.cfg.steps, self.cfg.d_model) + self.pos
        x = self.ln(self.blocks(x))
        logits, vel, off = self.head(x).split(self.cfg.voices, dim=2)
        return logits, torch.sigmoid(vel), 0.5 * torch.tanh(off)


class GrooveVAE(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, groove: torch.Tensor, sample: bool = True) -> dict[str, torch.Tensor]:
        """The model hears the first ``groove_channels`` of the groove (a 4-channel groove with its
        register suits either kind of model)."""
        mu, logvar = self.encoder(groove[..., :self.cfg.groove_channels])
        z = mu + torch.exp(0.5 * logvar.clamp(-12, 8)) * torch.randn_like(mu) if sample else mu
        logits, vel, off = self.decoder(z)
        return {"logits": logits, "velocities": vel, "offsets": off, "mu": mu, "logvar": logvar}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class RegisterEncoders(nn.Module):
    """Two encoders into one z, for one decoder: ``register`` hears a groove whose register is
    known (its fourth channel not all 0), ``plain`` any other, by its first three channels. The box
    sends grooves the same way (Generator.encode)."""

    def __init__(self, plain: Encoder, register: Encoder) -> None:
        super().__init__()
        self.plain, self.register = plain, register

    def forward(self, groove: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.plain(groove[..., :3])
        if groove.shape[-1] < 4:
            return mu, logvar
        known = (groove[..., 3] != 0).any(-1, keepdim=True)
        r_mu, r_logvar = self.register(groove[..., :4])
        return torch.where(known, r_mu, mu), torch.where(known, r_logvar, logvar)


def with_register(model: GrooveVAE, register: GrooveVAE, sigma: float = 1.0) -> GrooveVAE:
    """``model`` (3 channels) hearing a known register through ``register``'s encoder (4 channels),
    which must have been trained on ``model``'s own decoder (train.py --freeze-decoder --init).
    ``sigma`` scales the register encoder's σ (its mu stays): how far "variation" takes z from a
    two-handed groove's mean, next to how far it goes from any other's."""
    if not 0.0 < sigma <= 4.0:
        raise ValueError(f"a register σ scale in (0, 4], not {sigma}")
    if model.cfg.groove_channels != 3 or register.cfg.groove_channels != 4:
        raise ValueError(f"a 3-channel model and a 4-channel register encoder, not {model.cfg.groove_channels} "
                         f"and {register.cfg.groove_channels} channels")
    theirs = register.decoder.state_dict()
    for name, weights in model.decoder.state_dict().items():
        if (name not in theirs or theirs[name].shape != weights.shape
                or not torch.allclose(weights, theirs[name], rtol=0.0, atol=1e-6)):   # (a soup rounds)
            raise ValueError(f"a decoder that is not this model's (first at {name}); train the register "
                             "encoder with --freeze-decoder --init THIS_CHECKPOINT")
    joined = GrooveVAE(replace(model.cfg, groove_channels=4))
    joined.encoder = RegisterEncoders(model.encoder, scale_sigma(register.encoder, sigma))   # type: ignore[assignment]
    joined.decoder = model.decoder
    return joined.eval()


def scale_sigma(encoder: Encoder, sigma: float) -> Encoder:
    """A copy of ``encoder`` whose σ is ``sigma`` times its own: log σ² gains 2 ln ``sigma``, folded
    into the latent projection's bias, so the graphs it exports are the same size and shape."""
    scaled = copy.deepcopy(encoder)
    with torch.no_grad():
        scaled.to_latent.bias[encoder.latent_size:] += 2.0 * math.log(sigma)
    return scaled


def widen(state: dict[str, torch.Tensor], config: dict, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """A checkpoint's weights (``state``, made with ``config``) for ``cfg``, which may hear more of
    the groove (``groove_channels``): the new channels enter through zero weights, so the model
    starts as the checkpoint's. Any other difference is a ValueError."""
    theirs = {**asdict(ModelConfig()), **config}
    if {**theirs, "groove_channels": cfg.groove_channels} != asdict(cfg) or theirs["groove_channels"] > cfg.groove_channels:
        raise ValueError(f"the architecture {theirs}, not {asdict(cfg)}")
    weight = state["encoder.embed.weight"]
    extra = weight.new_zeros(weight.shape[0], cfg.groove_channels - weight.shape[1])
    return {**state, "encoder.embed.weight": torch.cat([weight, extra], 1)}


def vae_loss(out: dict[str, torch.Tensor], patterns: torch.Tensor, loss: LossConfig,
             beta: float, expression: torch.Tensor | None = None,
             hit_targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-groove sums, averaged over the batch. patterns [B,32,9,3]; expression [B]: a weight per
    groove on the velocity and offset terms (None: 1); hit_targets [B,32,9]: what the hit term
    learns instead of the patterns' hits (soft targets: a teacher's; None: the hits)."""
    hits, vels, offs = patterns[..., 0], patterns[..., 1], patterns[..., 2]
    b = patterns.shape[0]
    pos_weight = torch.tensor(loss.pos_weight, device=patterns.device)
    bce = F.binary_cross_entropy_with_logits(out["logits"], hits if hit_targets is None else hit_targets,
                                             pos_weight=pos_weight, reduction="sum") / b
    cells = hits if expression is None else hits * expression[:, None, None]
    vel = (((out["velocities"] - vels) ** 2) * cells).sum() / b
    off = (((out["offsets"] - offs) ** 2) * cells).sum() / b
    mu, logvar = out["mu"], out["logvar"].clamp(-12, 8)
    kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp())).sum(1).mean()
    recon = bce + loss.velocity_weight * vel + loss.offset_weight * off
    total = recon + beta * torch.clamp(kl - loss.free_nats, min=0.0)
    return {"loss": total, "recon": recon, "bce": bce, "vel": vel, "off": off, "kl": kl}


def beta_at(epoch: float, loss: LossConfig) -> float:
    """KL weight at a (fractional) epoch: linear warm-up to loss.beta."""
    if loss.warmup_epochs <= 0:
        return loss.beta
    return loss.beta * min(1.0, epoch / loss.warmup_epochs)


# ---- the two graphs the box runs (the contract: docs/ARCHITECTURE.md, "Model contract") ------------------------

class EncoderGraph(nn.Module):
    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder   #: (the name the graph's nodes carry: /encoder/...)

    def forward(self, groove: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(groove)


class DecoderGraph(nn.Module):
    def __init__(self, model: GrooveVAE) -> None:
        super().__init__()
        self.decoder = model.decoder

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, vel, off = self.decoder(z)
        return torch.sigmoid(logits), vel, off

