"""`robosteer rank --explain`: the chosen heads' attention maps on tiny SmolVLA, pi0 and pi05.

The recorded probabilities must be a distribution over the keys the query may see (none on padded instruction
tokens) and must reproduce the head's traced output (probs @ V = z), which is what makes the maps trustworthy."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from helpers.architectures import tiny_policy
from PIL import Image
from typer.testing import CliRunner

from robosteer.errors import RobosteerError

logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)
torch.set_num_threads(1)
PROMPT_WORDS = ("task", "state", "action")
"""Words pi05's prompt adds around the instruction."""
SLOW_PI = [pytest.param("pi0", marks=pytest.mark.slow), pytest.param("pi05", marks=pytest.mark.slow)]


def build(kind: str, dataset):
    return tiny_policy(kind, dataset)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    from robosteer.study.rank_bench import write_synthetic_demos

    return write_synthetic_demos(tmp_path_factory.mktemp("demos") / "demos")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOSTEER_CACHE", str(tmp_path / "cache"))


def padded_inputs(policy, demos):
    """Three frames of two episodes, the language right-padded to the tokenizer's maximum length."""
    from robosteer.heads import features as feats
    from robosteer.heads.dataset import frame_table, open_dataset
    from robosteer.heads.keyframes import FrameConfig

    dataset = open_dataset(demos)
    frames, _ = frame_table(dataset, [0, 1], FrameConfig())
    (inputs, _), *_ = feats.model_batches(policy, feats.FrameLoader(dataset), frames, [0, 5, 9], 3, True)
    assert not bool(inputs.lang_masks.all()), "no padding: the masked keys are not tested"
    return inputs


def record(policy, reader, inputs, tokens: dict[str, str], step: int):
    """Every head's traced output and attention at ``tokens``, expert at denoising step ``step`` (the step after
    the last: the release protocol's clean pass)."""
    from robosteer.heads.trace import HeadTrace

    captures = reader.captures(tokens, inputs, step)
    heads = policy.layout.heads()
    with (
        HeadTrace(policy.model, policy.layout, captures) as trace,
        reader.attention_capture(policy.model, policy.layout, heads, captures) as maps,
    ):
        clean_pass = step == reader.num_steps(policy.model)
        (reader.sample_with_clean_pass if clean_pass else reader.sample_actions)(policy.model, inputs, seed=0)
    return trace, maps


@pytest.mark.parametrize("kind", ["smolvla", *SLOW_PI])
def test_attention_is_a_distribution_that_reproduces_the_traced_head_output(kind, demos):
    from robosteer.heads.readers import reader_for

    policy = build(kind, demos)
    reader = reader_for(policy.model)
    inputs = padded_inputs(policy, demos)
    steps = reader.num_steps(policy.model)
    for tokens, step in (
        (reader.feature_tokens("auto", policy.layout.stacks()), 0),
        ({"vlm": "last_lang", "expert": "first_action"}, steps - 1),
        ({"vlm": "last_lang", "expert": "first_action"}, steps),
    ):
        trace, maps = record(policy, reader, inputs, tokens, step)
        language = reader.prefix_segments(maps.prefix_len, inputs)["language"]
        padded = ~inputs.lang_masks  # (B, L)
        for head in policy.layout.heads():
            token = tokens[head.split(".")[0]]
            probs, values = maps.head_probs(head, token), maps.values[head]  # (B, S_k), (B, S_k, D)
            assert probs.shape[1] >= maps.prefix_len and values.shape[:2] == probs.shape, head
            assert bool((probs >= 0).all()), head
            assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[0]), atol=1e-5), head
            assert float(probs[:, language[0] : language[1]][padded].abs().max()) == 0.0, head
            z = torch.einsum("bk,bkd->bd", probs.float(), values.float())  # (B, D)
            assert torch.allclose(z, trace.head_z(head, token).float(), atol=1e-5), (head, token, step)


def test_smolvla_language_never_sees_the_state_token(demos):
    """The prefix is bidirectional over images and language, but the state token is a later block: a head read
    at the last instruction token gives it no attention, read at the state token it may."""
    from robosteer.heads.readers import reader_for

    policy = build("smolvla", demos)
    reader = reader_for(policy.model)
    inputs = padded_inputs(policy, demos)
    _, maps = record(policy, reader, inputs, {"vlm": "last_lang", "expert": "first_action"}, 0)
    for head in policy.layout.heads():
        if head.startswith("vlm."):
            assert float(maps.head_probs(head, "last_lang")[:, maps.prefix_len - 1].max()) == 0.0, head


def test_explain_frames_must_be_positive():
    from robosteer.heads import RankConfig

    with pytest.raises(RobosteerError, match="explain-frames"):
        RankConfig(explain_frames=0)


@pytest.mark.parametrize("kind", [pytest.param("smolvla", marks=pytest.mark.slow), *SLOW_PI])
def test_cli_rank_explain_writes_a_png_per_chosen_head_a_contact_sheet_and_explain_json(kind, demos, tmp_path):
    from robosteer.cli import app

    build(kind, demos).save(tmp_path / "base")
    out = tmp_path / "rank"
    args = ["rank", "--policy", tmp_path / "base", "--dataset", demos, "--out", out, "--top-k", 3,
            "--sensitivity-frames", 4, "--causal-frames", 4, "--causal-draws", 2, "--explain", "--explain-frames", 2]  # fmt: skip
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    chosen = json.loads((out / "heads.json").read_text())["selected"]
    assert json.loads((out / "options.json").read_text())["explain"] is True
    pngs = {path.name for path in (out / "explain").glob("*.png")}
    assert pngs == {f"{head}.png" for head in chosen} | {"contact_sheet.png"}
    for name in pngs:
        with Image.open(out / "explain" / name) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100, name
    report = json.loads((out / "explain" / "explain.json").read_text())
    check_report(report, chosen)


def check_report(report: dict, chosen: list[str]) -> None:
    """explain.json: every chosen head, two frames, shares summing to 1, instruction tokens as text."""
    assert list(report["heads"]) == chosen and len(report["frames"]) == 2
    cameras = report["cameras"]
    assert cameras == ["front", "wrist"]
    for head, entry in report["heads"].items():
        assert entry["png"] == f"{head}.png" and len(entry["frames"]) == 2
        for frame, seen in zip(report["frames"], entry["frames"], strict=True):
            assert set(seen["shares"]) == {*cameras, "language", "rest"}
            assert sum(seen["shares"].values()) == pytest.approx(1.0, abs=1e-3)
            words = [item["token"].lower() for item in seen["top_tokens"]]
            allowed = {*frame["task"].split(), *PROMPT_WORDS}
            assert words and all(word in allowed for word in words if word.isalpha()), (head, words)


def test_explain_ranking_on_tiny_smolvla_draws_square_patch_grids(demos, tmp_path):
    """The API behind --explain: the ranked heads' maps, each camera's patches a square grid, the report complete."""
    from robosteer.heads import RankConfig, rank_heads
    from robosteer.heads.explain import attention_on_frames, heat, write_explanation

    policy = build("smolvla", demos)
    config = RankConfig(
        top_k=3, sensitivity_frames=0, causal_frames=0, controls=False, show_progress=False, explain_frames=2
    )
    heads_json = rank_heads(policy, demos, config).to_json()
    explanation = attention_on_frames(policy, demos, heads_json, config)
    for head in explanation.heads:
        for cam in range(len(explanation.cameras)):
            grid = heat(explanation, explanation.probs[head][0], cam)
            assert grid.shape[0] == grid.shape[1] > 1, (head, grid.shape)
    written = write_explanation(explanation, heads_json, tmp_path / "explain")
    check_report(json.loads(written.read_text()), heads_json["selected"])
    assert (tmp_path / "explain" / "contact_sheet.png").is_file()


def test_smolvla_image_patches_leave_out_the_image_special_tokens():
    from types import SimpleNamespace

    from robosteer.heads.readers.smolvla import SmolVLAReader

    inner = SimpleNamespace(
        add_image_special_tokens=True, global_image_start_token=torch.zeros(1), image_end_token=torch.zeros(2)
    )
    assert SmolVLAReader().image_patches(SimpleNamespace(model=inner), (10, 77)) == (11, 75)
    inner.add_image_special_tokens = False
    assert SmolVLAReader().image_patches(SimpleNamespace(model=inner), (10, 77)) == (10, 77)
