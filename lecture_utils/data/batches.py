"""A device-resident batch iterator: the data set as one tensor, each batch one index operation."""
from __future__ import annotations

import torch


class BatchIterator:
    """Minibatches drawn from tensors that live on the device as a whole.

    Instead of a per-sample DataLoader (one Python call and one collate per example), the data
    sit on the device as one tensor and each batch is a single index operation.  Each epoch
    visits every example exactly once, in an order drawn from a seeded generator, so a run
    repeats exactly; the generator state is part of ``state_dict`` for resuming.

    ``drop_last=True`` drops the final short batch (every batch has ``batch_size`` rows).
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True,
                 drop_last: bool = True, seed: int = 0, device: torch.device | str | None = None):
        if not tensors:
            raise ValueError("BatchIterator needs at least one tensor")
        n = tensors[0].shape[0]
        for i, t in enumerate(tensors):
            if t.shape[0] != n:
                raise ValueError(
                    f"all tensors need the same first dimension; tensor 0 has {n}, tensor {i} has {t.shape[0]}"
                )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if drop_last and batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the {n} examples and drop_last=True")
        self.tensors = tuple(t.to(device) if device is not None else t for t in tensors)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = self.tensors[0].shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        return self.tensors[0].shape[0]

    def __iter__(self):
        n = self.num_examples
        device = self.tensors[0].device
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(device)
        else:
            order = torch.arange(n, device=device)
        for b in range(len(self)):
            index = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = tuple(t[index] for t in self.tensors)
            yield batch if len(batch) > 1 else batch[0]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
