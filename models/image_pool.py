"""History of generated images for the discriminator updates (Shrivastava et al., 2017).

Showing D a mix of the newest fakes and older ones keeps it from chasing the generator's latest
mode, which steadies CycleGAN training. Semantics as upstream: while the pool fills, every
query returns its own images (and stores them); once full, each image is, with probability 0.5,
swapped for a random stored one (the new image takes its slot), else returned as it is.
Random draws use Python's `random`, whose state the training checkpoints already capture.
"""
from __future__ import annotations

import random

import torch


class ImagePool:
    """A buffer of at most `pool_size` past images; pool_size 0 turns it into a pass-through."""

    def __init__(self, pool_size: int):
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch the same size as `images`, mixing them with stored ones; never carries gradients."""
        if self.pool_size == 0:
            return images
        chosen = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                chosen.append(image)
            elif random.uniform(0, 1) > 0.5:
                slot = random.randint(0, self.pool_size - 1)
                chosen.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                chosen.append(image)
        return torch.cat(chosen, 0)

    def state_dict(self) -> dict:
        """The stored images (on the CPU), so an exact resume continues with the same history."""
        return {"pool_size": self.pool_size, "images": [image.cpu() for image in self.images]}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        if int(state["pool_size"]) != self.pool_size:
            raise ValueError(f"saved pool holds up to {state['pool_size']} images, this one {self.pool_size}")
        self.images = [image.to(device) for image in state["images"]]
