"""Finetuning batches served from memory equal the batches a DataLoader decodes from the dataset."""

from __future__ import annotations

import torch
from helpers.tiny_data import write_tiny_dataset

from robosteer.tuners.data import make_batch_stream, open_dataset
from robosteer.tuners.memory import InMemoryFrames


def test_in_memory_batches_equal_the_dataset_batches(tmp_path):
    from robosteer.policies import make_tiny_smolvla

    root = write_tiny_dataset(tmp_path / "demos", n_episodes=2, frames=10)
    dataset = open_dataset(make_tiny_smolvla(root, n_layers=2), root)  # with the policy's action chunk
    from_disk = make_batch_stream(dataset, batch_size=4, seed=3, steps=5, in_memory=False)(2)
    from_memory = make_batch_stream(dataset, batch_size=4, seed=3, steps=5, in_memory=True)(2)
    n = 0
    for disk, memory in zip(from_disk, from_memory, strict=True):
        assert disk.keys() == memory.keys()
        for key, value in disk.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == memory[key].dtype and torch.equal(value, memory[key]), key
            else:
                assert value == memory[key], key
        n += 1
    assert n == 3  # steps 2, 3, 4 (resumed at step 2)
    frames = InMemoryFrames(dataset)
    assert frames.uint8_images and all(frames.tensors[k].dtype == torch.uint8 for k in frames.uint8_images)
