"""Auxiliary localisation in pretraining: positions come from the recording's labels, the head's loss is added to
the flow-matching loss with its weight, its gradient reaches the vision encoder, it checkpoints and resumes with the
run, and datasets without positions or a negative weight are refused before any work."""

from __future__ import annotations

import json

import pytest
import torch

from robosteer.errors import RobosteerError


def _demos(policy, n: int = 24):
    from robosteer.pretrain.data import InMemoryDemos

    generator = torch.Generator().manual_seed(1)
    half = n // 2
    return InMemoryDemos(
        states=torch.randn(n, 8, generator=generator),
        actions=torch.randn(n, 8, generator=generator),
        images={
            k: torch.randint(0, 255, (n, 3, 32, 32), generator=generator, dtype=torch.uint8) for k in policy.image_keys
        },
        episode_end=torch.tensor([half] * half + [n] * (n - half)),
        task_ids=torch.tensor([0] * n),
        tasks=["go to the red bowl"],
        positions=torch.tensor([[0.4, -0.1, 0.5, 0.1]] * half + [[0.6, 0.2, 0.45, -0.2]] * (n - half)),
    )


def _seeded_loss(loss_fn, batch):
    torch.manual_seed(3)  # the flow-matching noise and time
    return loss_fn(dict(batch))


def test_the_locate_loss_adds_the_weighted_position_error_to_the_flow_loss():
    from robosteer.policies.loading import make_tiny_smolvla
    from robosteer.pretrain.locate import LocateLoss

    policy = make_tiny_smolvla(seed=0)
    demos = _demos(policy)
    batch = demos.sample(4, policy.config.chunk_size, torch.Generator().manual_seed(0), positions=True)
    locate = LocateLoss(policy, demos.positions, weight=0.5)
    plain = _seeded_loss(policy.loss, {k: v for k, v in batch.items() if k != "robosteer.positions"})
    combined = _seeded_loss(locate, batch)
    target = (batch["robosteer.positions"] - demos.positions.mean(0)) / demos.positions.std(0)
    # the head starts at zero, so its error is the normalised targets' mean square
    assert float((combined - plain).detach()) == pytest.approx(0.5 * float((target**2).mean()), rel=1e-4)


def test_the_position_head_trains_the_vision_encoder():
    from robosteer.policies.loading import make_tiny_smolvla
    from robosteer.pretrain.locate import LocateLoss

    policy = make_tiny_smolvla(seed=0)
    demos = _demos(policy)
    locate = LocateLoss(policy, demos.positions, weight=1.0)
    encoder = policy.model.model.vlm_with_expert.get_vlm_model().vision_model
    optimizer = torch.optim.SGD(locate.head.parameters(), lr=0.1)
    for _ in range(2):  # the zero head first learns, then passes gradient back
        optimizer.zero_grad()
        policy.model.zero_grad()
        batch = demos.sample(4, policy.config.chunk_size, torch.Generator().manual_seed(0), positions=True)
        _seeded_loss(locate, batch).backward()
        optimizer.step()
    assert locate.head.weight.abs().sum() > 0
    only_flow = {n: p.grad.clone() for n, p in encoder.named_parameters()}
    policy.model.zero_grad()
    plain = demos.sample(4, policy.config.chunk_size, torch.Generator().manual_seed(0))
    _seeded_loss(policy.loss, plain).backward()
    assert any(not torch.allclose(only_flow[n], p.grad) for n, p in encoder.named_parameters())


def test_recorded_episodes_carry_their_positions_into_training(tmp_path):
    from robosteer.pretrain.data import load_demos
    from sim.recording import record_dataset

    root = record_dataset("reach_bowl", 2, tmp_path / "bowls", image_size=32, progress=False)
    labels = [json.loads(line)["labels"] for line in (root / "meta" / "robosteer_episode_labels.jsonl").open()]
    demos = load_demos(root, 32, ["observation.images.front"])
    first_of = [0, int(demos.episode_end[0])]
    for episode, frame in enumerate(first_of):
        expected = [labels[episode][k] for k in ("object_x", "object_y", "target_x", "target_y")]
        assert demos.positions[frame].tolist() == pytest.approx(expected)
    assert (demos.positions[: first_of[1]] == demos.positions[0]).all()  # one position per episode


@pytest.mark.slow
def test_pretraining_with_localisation_checkpoints_the_head_and_resumes_only_with_the_same_weight(tmp_path):
    from safetensors.torch import load_file

    from robosteer.policies.loading import make_tiny_smolvla
    from robosteer.pretrain.pipeline import PretrainConfig, check_pretrain_resume, train

    policy = make_tiny_smolvla(seed=0)
    cfg = PretrainConfig(out=tmp_path, steps=2, batch_size=2, lr=1e-3, locate_weight=0.5)
    losses, _ = train(policy, _demos(policy), cfg)
    assert len(losses) == 2
    saved = load_file(str(tmp_path / "checkpoints" / "latest" / "trainable.safetensors"))
    assert saved["locate_head.weight"].abs().sum() > 0
    (tmp_path / "dataset" / "meta").mkdir(parents=True)
    (tmp_path / "dataset" / "meta" / "info.json").write_text("{}")
    other = PretrainConfig(out=tmp_path, steps=2, batch_size=2, lr=1e-3, locate_weight=1.0, resume=True)
    with pytest.raises(RobosteerError, match=r"locate_weight 0\.5 \(now 1\.0\)"):
        check_pretrain_resume(other)


def test_a_negative_weight_or_a_dataset_without_positions_is_refused(tmp_path):
    from robosteer.pretrain.pipeline import PretrainConfig
    from robosteer.study.rank_bench import write_synthetic_demos

    with pytest.raises(RobosteerError, match="--locate-weight must be >= 0"):
        PretrainConfig(out=tmp_path / "a", locate_weight=-1.0)
    unlabelled = write_synthetic_demos(tmp_path / "synthetic", n_episodes=2, n_frames=8)
    with pytest.raises(RobosteerError, match="--locate-weight needs every episode's object/target positions"):
        PretrainConfig(out=tmp_path / "b", data=str(unlabelled), locate_weight=1.0)
    assert not (tmp_path / "b").exists()
