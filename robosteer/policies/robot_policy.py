"""RobotPolicy: one interface over a LeRobot VLA, its processors and its head layout."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robosteer.constants import ACTION, OBS_STATE, TASK
from robosteer.errors import RobosteerError
from robosteer.files import atomic_dir, atomic_write_text
from robosteer.policies.hub_cache import try_register_vlm, vlm_repo_id
from robosteer.policies.layout import HeadLayout

VLM_SUBDIR = "vlm"
"""Checkpoint sub-folder holding the local SmolVLM config/tokenizer/processor; configs name the VLM by its hub id
(``robosteer/smolvlm-<digest>``, see :mod:`robosteer.policies.hub_cache`), older checkpoints by this relative name."""


class RobotPolicy:
    """A LeRobot ``PreTrainedPolicy`` plus its pre/post processors and head layout.

    ``select_action(obs, task)`` takes the sim env's observation dict (numpy: ``observation.state`` (8,) and
    ``observation.images.<cam>`` uint8 (H, W, 3)) and returns the env action (8,) numpy, so
    ``env.step(policy.select_action(obs, task))`` just works. Actions come from an action chunk queue
    (``n_action_steps`` per model call); call :meth:`reset` at every episode start.
    """

    def __init__(self, model, preprocessor, postprocessor, layout: HeadLayout, vlm_dir: Path | None = None):
        self.model = model
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.layout = layout
        self.vlm_dir = Path(vlm_dir) if vlm_dir else None

    # -- description -------------------------------------------------------------------------------------------
    @property
    def config(self):
        return self.model.config

    @property
    def image_keys(self) -> list[str]:
        return list(self.config.image_features)

    @property
    def state_dim(self) -> int:
        return int(self.config.input_features[OBS_STATE].shape[0])

    @property
    def action_dim(self) -> int:
        return int(self.config.output_features[ACTION].shape[0])

    def __repr__(self) -> str:
        n_params = sum(p.numel() for p in self.model.parameters())
        return (
            f"RobotPolicy({self.layout.architecture}, {n_params / 1e6:.1f}M params, "
            f"{self.layout.n_heads_total} heads in {self.layout.stacks()})"
        )

    # -- inference ---------------------------------------------------------------------------------------------
    def observation_to_batch(self, obs: dict[str, Any], task: str) -> dict[str, Any]:
        """Env observation (numpy, unbatched) -> LeRobot batch of size 1 (float images in [0, 1], CHW)."""
        if not isinstance(task, str) or not task.strip():
            raise RobosteerError("the task instruction must be a non-empty string, e.g. 'pick up the red cube'")
        missing = [k for k in [OBS_STATE, *self.image_keys] if k not in obs]
        if missing:
            raise RobosteerError(
                f"observation is missing {missing}; this policy expects keys "
                f"{[OBS_STATE, *self.image_keys]} (cameras: check the env's camera names)"
            )
        state = np.asarray(obs[OBS_STATE], dtype=np.float32)
        if state.shape != (self.state_dim,):
            raise RobosteerError(
                f"observation.state has shape {state.shape}, expected ({self.state_dim},): "
                "7 joint positions + gripper width"
            )
        batch: dict[str, Any] = {OBS_STATE: torch.from_numpy(state)[None], TASK: [task]}  # (1, S)
        for key in self.image_keys:
            img = np.asarray(obs[key])
            if img.ndim != 3 or img.shape[-1] != 3:
                raise RobosteerError(f"{key} has shape {img.shape}, expected an RGB image (H, W, 3)")
            tensor = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)  # (3, H, W)
            tensor = tensor.float() / 255.0 if img.dtype == np.uint8 else tensor.float()
            batch[key] = tensor[None]  # (1, 3, H, W)
        return batch

    @torch.no_grad()
    def select_action(self, obs: dict[str, Any], task: str) -> np.ndarray:
        """The next action (action_dim,) for the env; runs the model once every ``n_action_steps`` calls."""
        batch = self.preprocessor(self.observation_to_batch(obs, task))
        action = self.model.select_action(batch)  # (1, A), normalised
        action = self.postprocessor(action)
        return action[0].detach().cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def predict_action_chunk(self, obs: dict[str, Any], task: str) -> np.ndarray:
        """A whole action chunk (chunk_size, action_dim) for one observation; does not touch the queue."""
        batch = self.preprocessor(self.observation_to_batch(obs, task))
        chunk = self.model.predict_action_chunk(batch)  # (1, T, A), normalised
        chunk = self.postprocessor(chunk)
        return chunk[0].detach().cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def predict_action_chunks(
        self, observations: list[dict[str, Any]], tasks: list[str], generators: list[torch.Generator]
    ) -> np.ndarray:
        """Action chunks (N, chunk_size, action_dim) for N observations in one model call; chunk i's flow-matching
        noise comes from ``generators[i]``, so it does not depend on the other observations of the batch."""
        singles = [self.observation_to_batch(obs, task) for obs, task in zip(observations, tasks, strict=True)]
        batch: dict[str, Any] = {TASK: list(tasks)}
        for key in singles[0]:
            if key != TASK:
                batch[key] = torch.cat([single[key] for single in singles])  # (N, ...)
        shape = (self.config.chunk_size, self.config.max_action_dim)
        noise = torch.stack([torch.randn(shape, generator=g) for g in generators])  # (N, chunk_size, max_action_dim)
        noise = noise.to(next(self.model.parameters()).device)
        chunks = self.model.predict_action_chunk(self.preprocessor(batch), noise=noise)  # (N, T, A), normalised
        return self.postprocessor(chunks).detach().cpu().numpy().astype(np.float32)

    def reset(self) -> None:
        """Clear the action queue (call at every episode start)."""
        self.model.reset()

    # -- training ----------------------------------------------------------------------------------------------
    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Apply the LeRobot preprocessor (normalise, tokenise the task) to a raw DataLoader batch."""
        return self.preprocessor(dict(batch))

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Training loss (scalar) on a raw DataLoader batch from a LeRobotDataset (actions as chunks)."""
        loss, _ = self.model.forward(self.prepare_batch(batch))
        return loss

    # -- identity and persistence ------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Short hash of the weights and config: same weights -> same fingerprint."""
        digest = hashlib.sha256()
        digest.update(self.layout.architecture.encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            if tensor.device.type == "meta":
                digest.update(str(tuple(tensor.shape)).encode())
                continue
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Write a LeRobot checkpoint (``save_pretrained`` + processors + local VLM folder) atomically.

        The configs name the VLM by its content-addressed hub id (``robosteer/smolvlm-<digest>``, never a path of
        this machine), the ``vlm/`` sub-folder carries its files, and the VLM is registered in the local hub cache,
        so LeRobot's own ``from_pretrained`` loads the checkpoint from any working directory, offline.
        """
        path = atomic_dir(path, self._save_into)
        if (path / VLM_SUBDIR).is_dir():
            try_register_vlm(path / VLM_SUBDIR)
        return path

    def _save_into(self, folder: Path) -> None:
        self.model.save_pretrained(folder)
        self.preprocessor.save_pretrained(folder)
        self.postprocessor.save_pretrained(folder)
        if self.vlm_dir is not None:
            shutil.copytree(self.vlm_dir, folder / VLM_SUBDIR)
            names = {str(self.vlm_dir), str(self.vlm_dir.resolve())}
            name_vlm_by_repo_id(folder, names, vlm_repo_id(folder / VLM_SUBDIR))


_VLM_NAME_KEYS = ("vlm_model_name", "tokenizer_name")
"""JSON keys that name the VLM folder (SmolVLA config, tokenizer processor step)."""


def name_vlm_by_repo_id(ckpt: Path, old_names: set[str], repo_id: str) -> None:
    """Replace every string of ``old_names`` (the VLM folder's paths; under the VLM name keys also the legacy
    relative name ``vlm``) in the checkpoint's top-level JSON files by the VLM's hub ``repo_id``."""

    def fix(node, key=None):
        if isinstance(node, dict):
            return {k: fix(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        names = old_names | {VLM_SUBDIR} if key in _VLM_NAME_KEYS else old_names
        return repo_id if isinstance(node, str) and node in names else node

    for file in ckpt.glob("*.json"):
        data = json.loads(file.read_text())
        fixed = fix(data)
        if fixed != data:
            atomic_write_text(file, json.dumps(fixed, indent=4) + "\n")
