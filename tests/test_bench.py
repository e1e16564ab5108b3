"""A study with tiny settings (tiny SmolVLA, 2 demos, 2 training steps, 2 episodes) produces every artifact."""

import json

import pytest

from robosteer.errors import RobosteerError
from robosteer.study import StudyConfig, run_study

pytest.importorskip("sim.recording")


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """Two expert demos of place_cube at 32 px (no video encoding) and a tiny SmolVLA shaped by them, saved."""
    from robosteer.policies import make_tiny_smolvla
    from sim.recording import record_dataset

    root = tmp_path_factory.mktemp("bench")
    dataset = record_dataset(
        "place_cube", 2, root / "demos", seed=100_000, image_size=32, use_videos=False, progress=False
    )
    policy_dir = root / "tiny_policy"
    make_tiny_smolvla(dataset, seed=0).save(policy_dir)
    return root, dataset, policy_dir


def test_bench_smoke_run_writes_every_artifact(tiny_setup):
    root, dataset, policy_dir = tiny_setup
    out = root / "study"
    config = StudyConfig(
        out=out,
        task="place_cube",
        dataset=dataset,
        policy=str(policy_dir),
        methods=("zero", "lora", "steer", "full"),
        steps=2,
        batch_size=2,
        top_k=2,
        head_rank=2,
        min_layer=1,
        lrs={"full": 1e-4},
        episodes=2,
        variations=("none", "lighting"),
        unseen_tasks=("pick_mug",),
        workers=1,
        image_size=32,
        max_steps=6,
    )
    summary = run_study(config, command="pytest smoke")

    for name in (
        "results.md",
        "results.json",
        "plots/success.png",
        "plots/heads.png",
        "plots/compute.png",
        "ranking/heads.json",
        "base_policy/model.safetensors",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not list(root.glob(".study.partial-*")), "the temporary study folder was not renamed"
    saved = json.loads((out / "results.json").read_text())
    assert saved["methods"].keys() == {"zero", "lora", "steer", "full"}
    cells = [(c["task"], c["variation"]) for c in saved["methods"]["steer"]["eval"]["cells"]]
    assert cells == [("place_cube", "none"), ("place_cube", "lighting"), ("pick_mug", "none")]
    for method, entry in saved["methods"].items():
        assert (out / "eval" / method / "results.json").is_file()
        assert all(c["episodes"] == 2 and len(c["videos"]) == 1 for c in entry["eval"]["cells"])
        assert all((out / "eval" / method / c["videos"][0]).is_file() for c in entry["eval"]["cells"])
        # identical evaluation seeds for every method
        assert [c["seeds"] for c in entry["eval"]["cells"]] == [[0, 1]] * 3
    compute = {m: saved["methods"][m]["compute"] for m in ("lora", "steer", "full")}
    assert saved["methods"]["zero"]["compute"] is None
    assert 0 < compute["steer"]["trainable_params"] < compute["full"]["trainable_params"]
    assert compute["lora"]["trainable_params"] < compute["full"]["trainable_params"]
    assert saved["ranking"]["selected"] and len(saved["ranking"]["selected"]) == 2
    assert all(".L0." not in head for head in saved["ranking"]["selected"])  # --min-layer 1
    assert [compute[m]["peak_lr"] for m in ("lora", "steer", "full")] == [1e-3, 1e-3, 1e-4]  # --lr full=1e-4
    steer_adapter = json.loads((out / "methods" / "steer" / "adapter" / "steer_config.json").read_text())
    assert steer_adapter["config"]["rank"] == 2  # --head-rank 2
    assert summary["ratios_steer_over_lora"]["trainable_params"] == pytest.approx(
        compute["steer"]["trainable_params"] / compute["lora"]["trainable_params"]
    )
    markdown = (out / "results.md").read_text()
    for text in ("| place_cube | lighting |", "| pick_mug | none |", "## Compute", "plots/success.png", "steer"):
        assert text in markdown


def test_bench_refuses_bad_input_before_any_work(tmp_path):
    with pytest.raises(RobosteerError, match="unknown method"):
        StudyConfig(out=tmp_path / "s", methods=("zero", "magic"))
    with pytest.raises(RobosteerError, match="--demos"):
        StudyConfig(out=tmp_path / "s", demos=1)
    with pytest.raises(RobosteerError, match="--lr"):
        StudyConfig(out=tmp_path / "s", lrs={"zero": 1e-3})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("user data")
    with pytest.raises(RobosteerError, match="not empty"):
        StudyConfig(out=tmp_path / "full")
    with pytest.raises(RobosteerError, match="unknown task"):
        run_study(StudyConfig(out=tmp_path / "s2", task="fly_to_moon", policy=str(tmp_path)))
    assert not (tmp_path / "s2").exists()


def test_micro_sim_section_measures_both_modes():
    """The --micro sim section runs (figures only printed by make bench, never asserted against targets)."""
    from robosteer.study.micro import bench_sim

    figures = bench_sim(rendered_steps=5, plain_steps=20, image_size=32)
    assert set(figures) == {"sim_steps_per_s_rendered", "sim_steps_per_s_no_render"}
    assert all(value > 0 for value in figures.values())
