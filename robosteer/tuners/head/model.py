"""Inject, merge, save and load head deltas on a model described by a :class:`HeadLayout`.

Shaped like a peft tuner model (``merge``/``unmerge``/``merge_and_unload``/``unload``, adapter files), but it edits
the given model in place instead of wrapping it, so LeRobot code that calls ``policy.model`` keeps working.

Gradient floor: every base parameter is frozen and the deltas sit in the chosen layers only, so no activation below
the lowest chosen layer requires grad and autograd records nothing there: the backward pass stops at the lowest
chosen layer (unless ``train_action_projections`` puts a trainable layer at the bottom of the action expert).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from robosteer.errors import RobosteerError
from robosteer.files import atomic_dir
from robosteer.policies.layout import HeadId, HeadLayout
from robosteer.tuners.head.config import HeadTunerConfig
from robosteer.tuners.head.layer import COLS, ROWS, HeadDeltaLinear

CONFIG_FILE = "steer_config.json"
WEIGHTS_FILE = "steer_adapter.safetensors"
_PROJ_AXIS = {"q_proj": ROWS, "k_proj": ROWS, "v_proj": ROWS, "o_proj": COLS}


class HeadTunerModel:
    """Head deltas injected into ``model`` (edited in place).

    Attributes:
        model: the tuned module (e.g. a LeRobot ``SmolVLAPolicy``).
        layout: where its heads live.
        config: the :class:`HeadTunerConfig`.
        wrapped: ``{"<module_path>.<proj>": HeadDeltaLinear}``.
    """

    def __init__(self, model: nn.Module, layout: HeadLayout, config: HeadTunerConfig):
        self.model, self.layout, self.config = model, layout, config
        if not config.heads and not config.trains_beyond_heads:
            raise RobosteerError("no heads to tune: pass the 'selected' heads of a heads.json (robosteer rank)")
        try:
            head_ids = layout.validate_heads(config.heads)
        except ValueError as err:
            raise RobosteerError(
                f"{err}. Rank the heads of this policy with `robosteer rank` and use its heads.json"
            ) from None
        self.head_ids = head_ids
        plan = self._plan(head_ids)
        for param in model.parameters():
            param.requires_grad_(False)
        generator = torch.Generator().manual_seed(config.init_seed)
        self.wrapped: dict[str, HeadDeltaLinear] = {}
        for (module_path, proj), entries in plan.items():
            attn = model.get_submodule(module_path)
            base = getattr(attn, proj)
            if not isinstance(base, nn.Linear):
                raise RobosteerError(
                    f"{module_path}.{proj} is a {type(base).__name__}, not an nn.Linear; "
                    "unload other adapters (merge LoRA first) before steering"
                )
            labels, slices = zip(*entries, strict=True)
            layer = HeadDeltaLinear(
                base, list(labels), list(slices), _PROJ_AXIS[proj], config.rank, config.scale, generator
            )
            setattr(attn, proj, layer)
            self.wrapped[f"{module_path}.{proj}"] = layer
        if config.mlp_rank is not None:
            self._wrap_mlps(generator)
        self.action_modules: dict[str, nn.Module] = {}
        if config.train_action_projections:
            for path in config.action_projections:
                try:
                    module = model.get_submodule(path)
                except AttributeError:
                    continue
                module.requires_grad_(True)
                self.action_modules[path] = module
            if not self.action_modules:
                raise RobosteerError(
                    f"train_action_projections is on but none of {list(config.action_projections)} "
                    "exists in this policy; set action_projections to its module paths"
                )

    def _wrap_mlps(self, generator: torch.Generator) -> None:
        """A low-rank delta over all output rows of every MLP linear of ``mlp_stacks`` (i.e. plain LoRA there),
        except in a layer whose output never reaches the action (the last VLM layer of a policy with an expert)."""
        from robosteer.validation import unreachable_heads

        sites = [site for site in self.layout if site.stack in self.config.mlp_stacks]
        dead = set(unreachable_heads([f"{s.stack}.L{s.layer}.H0" for s in sites], self.layout.heads()))
        for site in sites:
            if f"{site.stack}.L{site.layer}.H0" in dead:
                continue
            mlp_path = f"{site.module_path.rsplit('.', 1)[0]}.mlp"
            try:
                mlp = self.model.get_submodule(mlp_path)
            except AttributeError:
                raise RobosteerError(
                    f"{site.stack}.L{site.layer} has no MLP at {mlp_path}; set mlp_rank=None for this architecture"
                ) from None
            for name, base in list(mlp.named_children()):
                if isinstance(base, nn.Linear):
                    label = f"{site.stack}.L{site.layer}.mlp.{name}"
                    rows = [slice(0, base.out_features)]
                    layer = HeadDeltaLinear(base, [label], rows, ROWS, self.config.mlp_rank, 1.0, generator)
                    setattr(mlp, name, layer)
                    self.wrapped[f"{mlp_path}.{name}"] = layer

    def _plan(self, head_ids: list[HeadId]) -> dict[tuple[str, str], list[tuple[str, slice]]]:
        """``{(module_path, proj): [(label, slice), ...]}`` in a fixed order."""
        plan: dict[tuple[str, str], list[tuple[str, slice]]] = defaultdict(list)
        for head in sorted(head_ids):
            site = self.layout.site_of(head)
            if self.config.train_q:
                plan[(site.module_path, "q_proj")].append((head.name, site.head_slice(head.head)))
            if self.config.train_o:
                plan[(site.module_path, "o_proj")].append((head.name, site.head_slice(head.head)))
            if self.config.kv == "off":
                continue
            if self.config.kv == "own" and site.group_size != 1:
                raise RobosteerError(
                    f"{head.name}: {site.stack}.L{site.layer} uses grouped-query attention ({site.n_heads} query heads, "
                    f"{site.n_kv_heads} KV heads), so the head has no k/v rows of its own; use kv='shared' to train "
                    "its group's k/v rows (shared with the group) or kv='off'"
                )
            group = head.head // site.group_size
            label = f"{site.stack}.L{site.layer}.KV{group}"
            for proj in ("k_proj", "v_proj"):
                if label not in [lab for lab, _ in plan[(site.module_path, proj)]]:
                    plan[(site.module_path, proj)].append((label, site.kv_slice(head.head)))
        return dict(plan)

    # -- parameters ------------------------------------------------------------------------------------------------
    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """Every trainable tensor, keyed ``<module_path>.<proj>.<delta|lora_A|lora_B>`` (+ action projections)."""
        state = {
            f"{path}.{name}": p for path, layer in self.wrapped.items() for name, p in layer.delta_parameters().items()
        }
        for path, module in self.action_modules.items():
            state.update({f"{path}.{name}": p for name, p in module.named_parameters()})
        return state

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.adapter_state_dict().values())

    def n_trainable(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())

    def lowest_layers(self) -> dict[str, int]:
        """Per stack, the lowest tuned layer (chosen head or MLP delta; the action projections reach layer 0 of
        every stack they feed): backward stops there."""
        layers = [(head.stack, head.layer) for head in self.head_ids]
        layers += [_stack_layer(layer.labels[0]) for path, layer in self.wrapped.items() if ".mlp." in layer.labels[0]]
        if self.action_modules:
            layers += [(site.stack, 0) for site in self.layout if site.stack != "vlm"]
        out: dict[str, int] = {}
        for stack, layer in layers:
            out[stack] = min(out.get(stack, layer), layer)
        return out

    # -- merge -----------------------------------------------------------------------------------------------------
    def merge(self) -> None:
        """Write the deltas into the weights (the forward then costs what the base model costs)."""
        for layer in self.wrapped.values():
            layer.merge()

    def unmerge(self) -> None:
        """Take merged deltas out of the weights again."""
        for layer in self.wrapped.values():
            layer.unmerge()

    def _restore_linears(self) -> nn.Module:
        for path, layer in self.wrapped.items():
            module_path, proj = path.rsplit(".", 1)
            setattr(self.model.get_submodule(module_path), proj, layer.base_layer)
        self.wrapped = {}
        return self.model

    def merge_and_unload(self) -> nn.Module:
        """Merge, then put the plain ``nn.Linear`` modules back: a plain checkpoint with no runtime cost."""
        self.merge()
        return self._restore_linears()

    def unload(self) -> nn.Module:
        """Remove the deltas without merging (the base model again, except action projections trained in full)."""
        self.unmerge()
        return self._restore_linears()

    # -- files -----------------------------------------------------------------------------------------------------
    def save_adapter(self, out_dir: str | Path, policy_fingerprint: str | None, extra: dict | None = None) -> Path:
        """Write ``steer_adapter.safetensors`` + ``steer_config.json`` (written to a temp dir, then renamed)."""
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.adapter_state_dict().items()}
        meta = {
            "method": "steer",
            "policy_fingerprint": policy_fingerprint,
            "architecture": self.layout.architecture,
            "heads": [h.name for h in sorted(self.head_ids)],
            "config": self.config.to_dict(),
            "n_trainable": self.n_trainable(),
            **(extra or {}),
        }

        def write(folder: Path) -> None:
            save_file(tensors, str(folder / WEIGHTS_FILE))
            (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2))

        return atomic_dir(out_dir, write)

    @classmethod
    def from_adapter(
        cls, model: nn.Module, layout: HeadLayout, adapter_dir: str | Path, policy_fingerprint: str | None
    ) -> HeadTunerModel:
        """Inject the adapter saved in ``adapter_dir``; refuses a policy with another fingerprint."""
        meta = read_adapter_config(adapter_dir)
        saved = meta.get("policy_fingerprint")
        if saved and policy_fingerprint and saved != policy_fingerprint:
            raise RobosteerError(
                f"adapter {adapter_dir} was trained on policy {saved[:12]} but this policy is "
                f"{policy_fingerprint[:12]}; load it onto the base policy it was trained on"
            )
        tuner = cls(model, layout, HeadTunerConfig.from_dict(meta["config"]))
        tensors = load_file(str(Path(adapter_dir) / WEIGHTS_FILE))
        tuner.load_adapter_state_dict(tensors)
        return tuner

    @torch.no_grad()
    def load_adapter_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        own = self.adapter_state_dict()
        if set(own) != set(tensors):
            missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
            raise RobosteerError(
                f"adapter tensors do not match this policy (missing {missing[:3]}, unexpected "
                f"{extra[:3]}); was it saved for another architecture?"
            )
        for key, param in own.items():
            if param.shape != tensors[key].shape:
                raise RobosteerError(
                    f"adapter tensor {key} has shape {tuple(tensors[key].shape)}, this policy needs "
                    f"{tuple(param.shape)}; the adapter belongs to another policy"
                )
            param.copy_(tensors[key].to(param.dtype))


def _stack_layer(label: str) -> tuple[str, int]:
    """``("vlm", 3)`` from a label such as ``vlm.L3.mlp.gate_proj``."""
    stack, layer = label.split(".")[:2]
    return stack, int(layer[1:])


def read_adapter_config(adapter_dir: str | Path) -> dict:
    path = Path(adapter_dir) / CONFIG_FILE
    if not path.is_file():
        raise RobosteerError(
            f"{adapter_dir} holds no {CONFIG_FILE}; pass the adapter/ folder written by "
            "`robosteer finetune --method steer`"
        )
    return json.loads(path.read_text())
