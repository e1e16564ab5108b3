"""Can the base's vision encoder learn to locate the white bowl when trained on exactly that?

Trains only a from-scratch vision encoder + connector (the base's geometry, or a variant) and a linear head to
regress the white bowl's table position (x, y) from the front camera, on the reach_bowl recording's episodes whose
named bowl is white (every 2nd frame); one episode in five is held out. Prints the held-out error per axis and the
share of held-out frames located within 3 cm (reach_bowl's success radius). Not a policy: an upper reference for
what the encoder can pull out of these pixels in a given number of steps.

    python docs/results/franka-reach-probe/encoder_capacity.py DATASET [--steps 1500] [--arm NAME ...]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
from tokens_locate import as_input, white_frames  # the script beside this one (its folder is on sys.path)

from robosteer.policies.smolvla_builder import build_smolvla, default_features
from robosteer.pretrain.pipeline import BASE_SPEC

FRONT = "observation.images.front"
ARMS = {
    "base: 8 px patches, shuffle 2, width 64, 2 layers": {},
    "4 px patches, shuffle 4 (9 tokens), width 64, 2 layers": dict(patch_size=4, scale_factor=4),
    "8 px patches, shuffle 2, width 128, 4 layers": dict(vision_hidden_size=128, vision_layers=4),
}


def white_bowl_frames(dataset: Path):
    """(front images uint8 (N, 3, 48, 48), bowl xy (N, 2) [m], episode of each frame), every 2nd frame of the
    white-named episodes."""
    images, xy, episodes = white_frames(dataset, BASE_SPEC.vlm.image_size, [FRONT], every=2)
    return images[FRONT], torch.from_numpy(xy).float(), episodes


def train_and_test(images, xy, test, steps: int, **vlm) -> tuple[torch.Tensor, float, float]:
    """Held-out error (N_test, 2) [cm], share within 3 cm, seconds."""
    spec = replace(BASE_SPEC, vlm=replace(BASE_SPEC.vlm, **vlm))
    inputs, outputs = default_features(image_size=spec.vlm.image_size)
    vlm_with_expert = build_smolvla(spec, inputs, outputs, seed=0).model.vlm_with_expert
    encoder = torch.nn.ModuleList(
        [vlm_with_expert.get_vlm_model().vision_model, vlm_with_expert.get_vlm_model().connector]
    )

    def features(batch):  # (B, 3, S, S) -> (B, tokens * hidden)
        return vlm_with_expert.embed_image(as_input(batch)).flatten(1)

    head = torch.nn.Linear(features(images[:1]).shape[1], 2)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], 5e-4, weight_decay=1e-4)
    train_images, train_xy = images[~test], xy[~test]
    mean, std = train_xy.mean(0), train_xy.std(0)
    target = (train_xy - mean) / std
    generator = torch.Generator().manual_seed(0)
    start = time.time()
    for _ in range(steps):
        batch = torch.randint(len(train_images), (32,), generator=generator)
        loss = ((head(features(train_images[batch])) - target[batch]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        test_images = images[test]
        pred = torch.cat([head(features(test_images[i : i + 256])) for i in range(0, len(test_images), 256)])
    error = (pred * std + mean - xy[test]) * 100
    return error, float((error.norm(dim=1) < 3).float().mean()), time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path, help="a reach_bowl recording (e.g. outputs/probe-reach-48/dataset)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps of batch 32 (default 1500)")
    parser.add_argument("--arm", action="append", choices=list(ARMS), help="encoders to try (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    images, xy, episodes = white_bowl_frames(args.dataset)
    test = torch.tensor(episodes % 5 == 0)
    spread = xy[test].std(0) * 100
    print(
        f"{len(xy)} frames ({int((~test).sum())} train / {int(test.sum())} held out, by episode); "
        f"bowl spread x {spread[0]:.1f} cm, y {spread[1]:.1f} cm"
    )
    for name in args.arm or list(ARMS):
        error, within, seconds = train_and_test(images, xy, test, args.steps, **ARMS[name])
        rmse = error.pow(2).mean(0).sqrt()
        median = error.norm(dim=1).median()
        print(
            f"{name}: rmse x {rmse[0]:.1f} cm, y {rmse[1]:.1f} cm; median {median:.1f} cm; within 3 cm {within:.0%}; "
            f"{seconds:.0f} s"
        )


if __name__ == "__main__":
    main()
