"""The head tuner's properties, one shared table of (model, config) cases run through the same
checks: zero delta = identical outputs, only the chosen heads' slices change, merged = adapter output, merge/unmerge
round trip, no gradient below the lowest chosen layer, adapters refused on another policy."""

from __future__ import annotations

import logging

import pytest
import torch

from robosteer.errors import RobosteerError
from robosteer.tuners.head import HeadTunerConfig, HeadTunerModel

logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)
torch.set_num_threads(1)

# name -> (model kind, model kwargs, tuner config kwargs)
CASES = {
    "llama-mha-full": ("llama", {"n_kv_heads": 4}, {"heads": ["decoder.L1.H2", "decoder.L2.H0"]}),
    "llama-mha-kv-own-rank2": (
        "llama",
        {"n_kv_heads": 4},
        {"heads": ["decoder.L2.H3", "decoder.L2.H1"], "kv": "own", "rank": 2},
    ),
    "llama-gqa-kv-shared": (
        "llama",
        {"n_kv_heads": 2},
        {"heads": ["decoder.L1.H0", "decoder.L1.H1", "decoder.L2.H3"], "kv": "shared"},
    ),
    "llama-mqa-o-only-rank3": (
        "llama",
        {"n_kv_heads": 1},
        {"heads": ["decoder.L2.H2"], "train_q": False, "rank": 3, "alpha": 6.0},
    ),
    # the last VLM layer's q/o never reach the action (the expert reads only VLM keys/values): tune L1 of 3
    "smolvla-tiny": (
        "smolvla",
        {"n_layers": 3},
        {"heads": ["vlm.L1.H1", "expert.L2.H2", "expert.L2.H0"], "kv": "shared"},
    ),
    # the released recipe: low-rank head deltas + LoRA on every VLM MLP linear + the action projections in full
    "smolvla-release": (
        "smolvla",
        {"n_layers": 3},
        {"heads": ["vlm.L1.H1", "expert.L2.H0"], "rank": 4, "mlp_rank": 4, "train_action_projections": True},
    ),
    "smolvla-release-noheads": (
        "smolvla",
        {"n_layers": 3},
        {"heads": [], "mlp_rank": 4, "train_action_projections": True},
    ),
    # pi0/pi05 (tiny random-weight builds of LeRobot's modules): one KV head per layer (multi-query attention)
    "pi0-tiny": ("pi0", {}, {"heads": ["vlm.L0.H1", "expert.L1.H2", "expert.L1.H0"], "kv": "shared"}),
    "pi05-tiny-rank2": ("pi05", {}, {"heads": ["vlm.L0.H5", "expert.L1.H7"], "rank": 2}),
}
_cache: dict = {}


class Case:
    """A fresh model of the case plus a way to run it deterministically on a fixed input."""

    def __init__(self, name: str, seed: int = 0):
        kind, model_kwargs, self.tuner_kwargs = CASES[name]
        self.kind = kind
        if kind == "llama":
            from helpers.toy import DecoderPolicy, pattern_sequences

            self.policy = DecoderPolicy(seed=seed, **model_kwargs)
            self.inputs = pattern_sequences(n=4, length=10)
        elif kind == "smolvla":
            from robosteer.policies import make_tiny_smolvla

            self.policy = make_tiny_smolvla(seed=seed, **model_kwargs)
            self.inputs = _smolvla_batch(self.policy)
        else:
            from robosteer.policies.pi_builder import PiSpec, make_tiny_pi

            self.policy = make_tiny_pi(PiSpec(kind=kind, tokenizer_max_length=64), seed=seed)
            self.inputs = _smolvla_batch(self.policy)
        self.policy.model.eval()

    def output(self) -> torch.Tensor:
        if self.kind == "llama":
            return self.policy.logits(self.inputs)
        torch.manual_seed(0)  # the flow-matching loss samples noise and time
        per_sample, _ = self.policy.model.forward(self.policy.prepare_batch(self.inputs), reduction="none")
        return per_sample  # (B,)

    def loss(self) -> torch.Tensor:
        return self.output().float().pow(2).mean() if self.kind == "llama" else self.output().mean()

    def config(self) -> HeadTunerConfig:
        return HeadTunerConfig(**self.tuner_kwargs)


def _smolvla_batch(policy) -> dict:
    generator = torch.Generator().manual_seed(0)
    batch = {
        "observation.state": torch.randn(2, 8, generator=generator),
        "action": torch.randn(2, policy.config.chunk_size, 8, generator=generator),
        "action_is_pad": torch.zeros(2, policy.config.chunk_size, dtype=torch.bool),
        "task": ["pick up the cube", "press the button"],
    }
    for key in policy.image_keys:
        batch[key] = torch.rand(2, 3, 32, 32, generator=generator)
    return batch


@pytest.fixture(params=list(CASES))
def case(request) -> Case:
    return Case(request.param)


def _randomise(tuner: HeadTunerModel, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in tuner.trainable_parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)


def _expected_mask(tuner: HeadTunerModel, key: str, shape) -> torch.Tensor | None:
    """Which entries of weight ``key`` may change (None: the weight must not change)."""
    for path, layer in tuner.wrapped.items():
        if key == f"{path}.weight":
            mask = torch.zeros(shape, dtype=torch.bool)
            if layer.axis == "rows":
                mask[layer.index] = True
            else:
                mask[:, layer.index] = True
            return mask
    return None


def test_zero_delta_leaves_outputs_identical(case):
    before = case.output()
    tuner = HeadTunerModel(case.policy.model, case.policy.layout, case.config())
    assert tuner.n_trainable() > 0
    assert torch.equal(case.output(), before)


def test_training_changes_only_chosen_slices_and_merge_matches(case):
    original = {k: v.clone() for k, v in case.policy.model.state_dict().items()}
    tuner = HeadTunerModel(case.policy.model, case.policy.layout, case.config())
    optimizer = torch.optim.Adam(tuner.trainable_parameters(), lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        case.loss().backward()
        optimizer.step()
    adapter_out = case.output().detach()
    expected = {key: None for key in original}
    for path, layer in tuner.wrapped.items():
        expected[f"{path}.weight"] = _expected_mask(tuner, f"{path}.weight", layer.weight.shape)
    for path, module in tuner.action_modules.items():  # trained in full
        expected.update(
            {f"{path}.{name}": torch.ones_like(p, dtype=torch.bool) for name, p in module.named_parameters()}
        )
    tuner.merge_and_unload()
    assert torch.allclose(case.output(), adapter_out, atol=1e-5, rtol=1e-4), "merged output != adapter output"
    merged = case.policy.model.state_dict()
    assert set(merged) == set(original), "merge_and_unload must give back the plain checkpoint layout"
    for key, weight in merged.items():
        changed = weight != original[key]
        mask = expected[key]
        if mask is None:
            assert not changed.any(), f"{key} changed but holds no chosen head"
        else:
            assert not (changed & ~mask).any(), f"{key} changed outside the chosen heads' slices"
            assert changed[mask].any(), f"{key}: the chosen slices did not train"


def test_merge_unmerge_round_trip(case):
    base_out = case.output()
    tuner = HeadTunerModel(case.policy.model, case.policy.layout, case.config())
    _randomise(tuner)
    adapter_out = case.output()
    assert not torch.allclose(adapter_out, base_out)
    tuner.merge()
    assert torch.allclose(case.output(), adapter_out, atol=1e-5, rtol=1e-4)
    tuner.unmerge()
    assert torch.allclose(case.output(), adapter_out, atol=1e-5, rtol=1e-4)
    tuner.unload()
    if not tuner.action_modules:  # projections trained in full are the model's own weights: unload keeps them
        assert torch.allclose(case.output(), base_out, atol=1e-5, rtol=1e-4)


def test_no_gradient_below_lowest_chosen_layer(case):
    tuner = HeadTunerModel(case.policy.model, case.policy.layout, case.config())
    lowest = min(tuner.lowest_layers().values(), default=0)
    seen: dict[str, bool] = {}
    handles = []
    for site in case.policy.layout:
        o_proj = case.policy.layout.module(case.policy.model, site, "o_proj")
        name = f"{site.stack}.L{site.layer}"
        handles.append(
            o_proj.register_forward_hook(  # the head outputs z (input) and the layer's attention output
                lambda _m, args, out, name=name: seen.__setitem__(
                    name, seen.get(name, False) or args[0].requires_grad or out.requires_grad
                )
            )
        )
    case.loss().backward()
    for handle in handles:
        handle.remove()
    trainable = {id(p) for p in tuner.trainable_parameters()}
    for name, param in case.policy.model.named_parameters():
        if id(param) not in trainable:
            assert param.grad is None, f"frozen parameter {name} received a gradient"
    assert all(p.grad is not None for p in tuner.trainable_parameters())
    assert any(seen.values()), "the hooks saw no activation that needs grad: the check would be vacuous"
    for site in case.policy.layout:
        if site.layer < lowest:
            assert not seen[f"{site.stack}.L{site.layer}"], f"activations of {site.stack}.L{site.layer} need grad"


def test_adapter_save_load_and_refusal(case, tmp_path):
    fingerprint = case.policy.fingerprint()  # of the base (projections trained in full change the model itself)
    tuner = HeadTunerModel(case.policy.model, case.policy.layout, case.config())
    _randomise(tuner)
    want = case.output()
    tuner.unload()
    tuner = HeadTunerModel(case.policy.model, case.policy.layout, case.config())
    _randomise(tuner)
    tuner.save_adapter(tmp_path / "adapter", fingerprint)
    fresh = Case(_name_of(case))
    loaded = HeadTunerModel.from_adapter(
        fresh.policy.model, fresh.policy.layout, tmp_path / "adapter", fresh.policy.fingerprint()
    )
    assert torch.allclose(fresh.output(), want, atol=1e-6)
    assert loaded.config.heads == case.config().heads
    other = Case(_name_of(case), seed=1)
    with pytest.raises(RobosteerError, match="trained on policy"):
        HeadTunerModel.from_adapter(
            other.policy.model, other.policy.layout, tmp_path / "adapter", other.policy.fingerprint()
        )


def _name_of(case: Case) -> str:
    return next(name for name, spec in CASES.items() if spec[2] is case.tuner_kwargs)


def test_kv_own_refused_under_gqa():
    case = Case("llama-gqa-kv-shared")
    with pytest.raises(RobosteerError, match="grouped-query attention"):
        HeadTunerModel(case.policy.model, case.policy.layout, HeadTunerConfig(heads=["decoder.L1.H0"], kv="own"))


def test_shared_kv_group_trained_once():
    case = Case("llama-gqa-kv-shared")  # L1.H0 and L1.H1 share KV group 0
    tuner = HeadTunerModel(case.policy.model, case.policy.layout, case.config())
    k_proj = tuner.wrapped["model.layers.1.self_attn.k_proj"]
    assert k_proj.labels == ["decoder.L1.KV0"]


def test_unknown_heads_and_bad_config_refused():
    case = Case("llama-mha-full")
    with pytest.raises(RobosteerError, match="not in this"):
        HeadTunerModel(case.policy.model, case.policy.layout, HeadTunerConfig(heads=["decoder.L9.H0"]))
    with pytest.raises(RobosteerError, match="kv="):
        HeadTunerConfig(heads=["decoder.L1.H0"], kv="sometimes")
    with pytest.raises(RobosteerError, match="duplicate"):
        HeadTunerConfig(heads=["decoder.L1.H0", "decoder.L1.H0"])


def test_action_projections_option_trains_them():
    case = Case("smolvla-tiny")
    config = HeadTunerConfig(heads=["expert.L1.H0"], train_action_projections=True)
    tuner = HeadTunerModel(case.policy.model, case.policy.layout, config)
    assert set(tuner.action_modules) == {"model.action_in_proj", "model.action_out_proj"}
    case.loss().backward()
    assert case.policy.model.model.action_in_proj.weight.grad is not None


def test_release_recipe_wraps_every_vlm_mlp_linear():
    case = Case("smolvla-release-noheads")
    tuner = HeadTunerModel(case.policy.model, case.policy.layout, case.config())
    vlm_layers = [site for site in case.policy.layout if site.stack == "vlm"]
    mlp_paths = [path for path in tuner.wrapped if ".mlp." in path]
    # gate, up and down projections of every VLM layer but the last, whose output never reaches the action
    assert len(mlp_paths) == 3 * (len(vlm_layers) - 1)
    assert not [p for p in mlp_paths if f"layers.{len(vlm_layers) - 1}." in p]
    assert all(tuner.wrapped[p].rank == 4 and tuner.wrapped[p].n_slices == 1 for p in mlp_paths)
    assert not [path for path in tuner.wrapped if ".mlp." not in path], "no head slices without heads"
    with pytest.raises(RobosteerError, match="no heads to tune"):
        HeadTunerModel(case.policy.model, case.policy.layout, HeadTunerConfig(heads=[]))
