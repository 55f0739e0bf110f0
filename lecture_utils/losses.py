"""Losses of the course, each tested against an independent reference.

Sections: VAE (notebook 02), GAN (notebooks 03-04), image-to-image (notebooks 06-07),
style (notebook 08).  All losses take logits where a probability would follow, for stability.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------- VAE losses (notebook 02)

# --------------------------------------------------------------------------- GAN losses (notebooks 03-04)

# --------------------------------------------------------------------------- style losses (notebook 08)
