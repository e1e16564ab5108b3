"""Pretrain the embedded base SmolVLA from scratch on scripted-expert demonstrations of the sim suite.

record (sim.recording.record_dataset) -> decode into memory -> train in the shared training loop
(``robosteer.tuners.train``) -> evaluate success per task over seeded episodes with ``robosteer.evaluation`` ->
checkpoint + MODEL_CARD.md. ``sim`` is imported only inside functions.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from robosteer.constants import IMAGE_SIZE
from robosteer.errors import RobosteerError
from robosteer.policies.smolvla_builder import SmolVLASpec
from robosteer.policies.vlm_folder import VlmSpec
from robosteer.tuners.config import FinetuneConfig
from robosteer.validation import require_lerobot_dataset

BASE_SPEC = SmolVLASpec(
    vlm=VlmSpec(
        text_hidden_size=128,
        text_layers=6,
        text_heads=8,
        text_kv_heads=4,
        head_dim=16,
        text_intermediate_size=384,
        vision_hidden_size=64,
        vision_layers=2,
        vision_heads=4,
        image_size=48,
        patch_size=8,
        scale_factor=2,
    ),
    chunk_size=16,
    n_action_steps=8,
    num_steps=5,
    tokenizer_max_length=16,
)
"""The embedded base policy: 6 VLM layers x 8 heads + 6 expert layers x 8 heads, ~2M parameters, 48 px images."""


@dataclass
class PretrainConfig:
    """Everything ``robosteer pretrain`` does, in one place (written into the model card)."""

    out: Path
    """Output folder: ``dataset/``, ``policy/`` (checkpoint + MODEL_CARD.md), the training loop's ``log.jsonl``,
    ``train_summary.json`` and ``checkpoints/latest``, and ``eval.json``."""
    suite: str = "franka"
    """Task suite: ``franka`` (robosteer's MuJoCo Franka tasks) or ``metaworld`` (Meta-World ML10)."""
    tasks: tuple[str, ...] | None = None
    """Pretraining tasks (default: the suite's: franka pick_cube, push_cube, press_button; metaworld ML10's 10
    training tasks)."""
    episodes_per_task: int | tuple[int, ...] = 50
    """Scripted-expert demonstrations recorded per task: one count for every task, or one count per task."""
    noise_std: float = 0.0
    """Std [rad] of Gaussian noise on the executed joint targets while recording (the clean target is the label)."""
    hold_frames: int = 0
    """Frames recorded after each demo succeeds, the expert holding its goal (0 = stop at success, where the env
    ends the episode): the demos then show the goal reached and the way back to it from just past it."""
    variations: tuple[str, ...] | None = None
    """Variation presets cycled over the episodes of each task (default: the suite's; franka: none, none, colour =
    2/3 nominal, 1/3 random object colour; metaworld: none)."""
    steps: int = 3000
    """Optimizer steps."""
    batch_size: int = 32
    """Frames per step."""
    lr: float = 5e-4
    """Peak learning rate of the shared training loop's schedule (``robosteer.tuners.train``): linear warm-up over
    ``warmup_steps = max(1, steps // 20)`` (5 % of the steps), then cosine decay to ``min_lr_ratio = 0.1`` of the
    peak; AdamW (betas 0.9/0.95, weight decay 1e-4), gradient norm clipped to 10, a log.jsonl line every 50 steps,
    a checkpoint every 1000 steps (see :func:`training_config`)."""
    seed: int = 0
    """Seed of recording, initialisation, batch sampling and evaluation."""
    eval_episodes: int = 50
    """Seeded evaluation episodes per pretraining task (no variations; 0 = skip, e.g. to evaluate later with
    ``robosteer eval --workers/--batch``)."""
    heldout_eval_episodes: int = 20
    """Seeded zero-shot evaluation episodes per held-out task."""
    eval_max_steps: int | None = None
    """Cut evaluation episodes after this many steps (None = the task's own time limit)."""
    workers: int = 0
    """Recording worker processes (0 = one per CPU core; 1 = record in this process)."""
    threads: int = 1
    """torch CPU threads (1 is fastest on a shared 2-core machine: 2 threads spin-wait when the cores are busy)."""
    data: tuple[str, ...] | None = None
    """Reuse already recorded LeRobot datasets instead of recording; several are trained on together (same features
    and fps), normalised with their pooled statistics."""
    init_from: Path | None = None
    """Continue training this checkpoint (same features) instead of starting from random weights."""
    save_every: int = 1000
    """Write the resumable ``checkpoints/latest`` every N steps (and at the end)."""
    resume: bool = False
    """Continue an interrupted run in ``--out``: reuse its recorded ``dataset/`` and train on from
    ``checkpoints/latest`` (weights, optimizer, schedule, random state, batch order) to ``--steps``; the result is the
    uninterrupted run's. Give the same options as the first sitting."""
    image_size: int | None = None
    """Side [px] of the square image the vision encoder sees; cameras are resized with padding to it (default: the
    base's, 48). Only for a new model: a checkpoint given by ``init_from`` keeps its own."""
    patch_size: int | None = None
    """Side [px] of a vision patch (default: the base's, 8)."""
    pixel_shuffle: int | None = None
    """The connector's pixel-shuffle factor: each camera gives (image_size / patch_size / pixel_shuffle)^2 tokens to
    the VLM decoder (default: the base's, 2, i.e. 9 tokens at 48 px)."""
    locate_weight: float = 0.0
    """Weight of an auxiliary loss during training: a linear head reads each episode's object and target table
    positions (from the recording's labels) off the image tokens the VLM decoder receives, so the vision encoder
    learns where things are; the head is dropped afterwards (0 = off, the plain flow-matching loss)."""
    spec: SmolVLASpec = field(default_factory=lambda: BASE_SPEC)
    """Model size and decoding settings."""

    def __post_init__(self):
        self.out = Path(self.out)
        self._resolve_suite_defaults()
        if not self.tasks:
            raise RobosteerError("--tasks is empty; give e.g. pick_cube,push_cube,press_button")
        counts = (self.episodes_per_task,) if isinstance(self.episodes_per_task, int) else tuple(self.episodes_per_task)
        self.episodes_per_task = counts * len(self.tasks) if len(counts) == 1 else counts
        if len(self.episodes_per_task) != len(self.tasks):
            raise RobosteerError(
                f"--episodes-per-task has {len(self.episodes_per_task)} counts for {len(self.tasks)} tasks; "
                "give one count for all tasks or one per task, e.g. 50,100,50"
            )
        if min(self.episodes_per_task) < 1 or self.steps < 1 or self.batch_size < 1:
            raise RobosteerError("--episodes-per-task, --steps and --batch-size must be >= 1")
        if self.noise_std < 0:
            raise RobosteerError(f"--noise-std must be >= 0 (got {self.noise_std})")
        from sim.recording import check_hold_frames

        check_hold_frames(self.hold_frames)
        if isinstance(self.data, str | Path):
            self.data = (str(self.data),)
        for root in self.data or ():
            require_lerobot_dataset(root)
        self._check_locate_weight()
        self._apply_image_geometry()

    def _check_locate_weight(self) -> None:
        """A negative weight, or ``--data`` without object/target positions, is refused before any work."""
        if self.locate_weight < 0:
            raise RobosteerError(f"--locate-weight must be >= 0 (got {self.locate_weight})")
        if self.locate_weight > 0:
            from robosteer.pretrain.locate import require_positions

            for root in self.data or ():
                require_positions(root)

    def _apply_image_geometry(self) -> None:
        """``image_size``/``patch_size``/``pixel_shuffle`` into the new model's spec (checked before any work)."""
        given = {"image_size": self.image_size, "patch_size": self.patch_size, "scale_factor": self.pixel_shuffle}
        given = {k: v for k, v in given.items() if v is not None}
        if not given:
            return
        if self.init_from is not None:
            raise RobosteerError(
                "--image-size/--patch-size/--pixel-shuffle shape a new model, but --init-from continues a checkpoint "
                "that has its own; drop one of them"
            )
        try:
            self.spec = replace(self.spec, vlm=replace(self.spec.vlm, **given))
        except ValueError as err:
            raise RobosteerError(f"{err}; e.g. --image-size 96 --patch-size 16 --pixel-shuffle 1") from None

    def _resolve_suite_defaults(self) -> None:
        """The suite's tasks and variation presets where none are given; every task named with its suite."""
        from sim.suites import get_suite, instruction_words, qualified_task

        suite = get_suite(self.suite)
        words = instruction_words(suite.name)
        if words and not self.spec.vlm.extra_words:  # the tokenizer must know the suite's instruction words
            self.spec = replace(self.spec, vlm=replace(self.spec.vlm, extra_words=words))
        self.tasks = tuple(qualified_task(t, self.suite) for t in (self.tasks or suite.pretrain_tasks))
        self.variations = tuple(self.variations or suite.pretrain_variations)
        bad = [v for v in self.variations if v not in suite.variation_presets]
        if bad:
            raise RobosteerError(
                f"--variations {bad} do not exist in the {suite.name} suite; use {', '.join(suite.variation_presets)}"
            )


def record_demos(cfg: PretrainConfig, progress=None) -> Path:
    """Scripted-expert demonstrations of every task into one LeRobot dataset (``out/dataset``)."""
    import os

    from robosteer.pretrain.recording import record_jobs, recording_jobs

    jobs = recording_jobs(cfg.tasks, cfg.episodes_per_task, cfg.variations, cfg.seed, cfg.noise_std, cfg.hold_frames)
    workers = min(len(jobs), cfg.workers or os.cpu_count() or 1)
    bar = progress.add_task(f"recording demonstrations ({workers} workers)", total=len(jobs)) if progress else None
    on_done = (lambda job: progress.advance(bar)) if bar is not None else None  # the first task id is 0
    return record_jobs(jobs, cfg.out / "dataset", workers, on_done=on_done)


def training_config(cfg: PretrainConfig) -> FinetuneConfig:
    """Pretraining's settings of the shared training loop (:func:`robosteer.tuners.train.train_loop`)."""
    return FinetuneConfig(
        method="full",
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        warmup_steps=max(1, cfg.steps // 20),
        min_lr_ratio=0.1,
        weight_decay=1e-4,
        betas=(0.9, 0.95),
        grad_clip=10.0,
        seed=cfg.seed,
        save_every=cfg.save_every,
        log_every=50,
        mixed_precision="no",
        progress=False,
        resume=cfg.resume,
    )


def train(policy, demos, cfg: PretrainConfig, progress=None) -> tuple[list[float], dict]:
    """Train all weights with the flow-matching loss (plus the localisation loss with ``cfg.locate_weight``) in the
    shared training loop; returns the loss of every step and the loop's summary (also ``train_summary.json``).

    The loop writes ``cfg.out/log.jsonl`` and the resumable ``cfg.out/checkpoints/latest`` and stops on a
    non-finite loss or gradient, as finetuning does.
    """
    from robosteer.pretrain.data import batch_stream
    from robosteer.tuners.train import train_loop

    config = training_config(cfg)
    named = {name: p for name, p in policy.model.named_parameters() if p.requires_grad}
    loss_fn = policy.loss
    if cfg.locate_weight > 0:
        loss_fn = _locate_loss(policy, demos, cfg.locate_weight)
        named.update(loss_fn.named_parameters())
    make_batches = batch_stream(demos, cfg.batch_size, policy.config.chunk_size, cfg.seed, cfg.locate_weight > 0)
    losses: list[float] = []
    ema = [0.0]
    bar = progress.add_task("training", total=cfg.steps) if progress else None

    def on_step(done: int, loss: float) -> None:
        ema[0] = loss if not losses else 0.98 * ema[0] + 0.02 * loss
        losses.append(loss)
        if progress:
            progress.update(bar, completed=done, description=f"training (loss {ema[0]:.3f})")

    run_info = {"locate_weight": cfg.locate_weight}
    summary = train_loop(policy.model, named, loss_fn, make_batches, config, cfg.out, run_info, on_step=on_step)
    (cfg.out / "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    policy.model.eval()
    return losses, summary


def _locate_loss(policy, demos, weight: float):
    from robosteer.pretrain.locate import NEEDS_POSITIONS, LocateLoss

    if demos.positions is None:
        raise RobosteerError(f"{NEEDS_POSITIONS}; these demonstrations lack them: drop --locate-weight or re-record")
    return LocateLoss(policy, demos.positions, weight)


def evaluate(
    policy, task: str, episodes: int, seed: int, variations: str = "none", progress: bool = False, max_steps=None
) -> dict:
    """Success rate of ``policy`` on ``task`` over seeded episodes (env seeds ``seed .. seed + episodes - 1``)."""
    records = episode_records(policy, task, episodes, seed, variations, progress, max_steps)
    return summarize(records, task, variations, seed)


def episode_records(
    policy, task: str, episodes: int, seed: int, variations: str = "none", progress: bool = False, max_steps=None
) -> list[dict]:
    """The episodes of :func:`evaluate`, run by :func:`robosteer.evaluation.evaluate` one at a time in this
    process (``batch=1``, IMAGE_SIZE px cameras, no videos): the rollouts ``robosteer eval`` runs."""
    from robosteer.evaluation import EvalConfig
    from robosteer.evaluation import evaluate as evaluate_cells

    config = EvalConfig(
        tasks=(task,),
        variations=(variations,),
        episodes=episodes,
        seed=seed,
        workers=1,
        batch=1,
        videos_per_cell=0,
        image_size=IMAGE_SIZE,
        max_steps=max_steps,
    )
    return evaluate_cells(policy, config, progress=progress, label=task).episodes


def summarize(records: list[dict], task: str, variations: str, seed: int) -> dict:
    """One task's line of ``eval.json`` and of the model card's success table."""
    successes = sum(bool(r["success"]) for r in records)
    return {
        "task": task,
        "variations": variations,
        "episodes": len(records),
        "successes": successes,
        "success_rate": successes / len(records),
        "mean_steps": sum(r["length"] for r in records) / len(records),
        "seed": seed,
    }


def machine_description() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} (CPU), {platform.system()}"


def wall_time_line(cfg: PretrainConfig, wall: dict) -> str:
    """The card's wall times; a resumed run's sitting is named as such (earlier sittings are not timed here)."""
    if cfg.data:
        recording = "none (`--data`)"
    elif cfg.resume:
        recording = "in the first sitting (not timed here)"
    else:
        recording = f"{wall['record_s'] / 60:.1f} min"
    training = f"{wall['train_s'] / 60:.1f} min"
    if wall.get("resumed_from_step"):
        training += (
            f" in the last sitting (steps {wall['resumed_from_step']}-{cfg.steps}; earlier sittings not timed here)"
        )
    return (
        f"recording {recording}, decoding {wall['decode_s'] / 60:.1f} min, training\n  {training}, "
        f"evaluation {wall['eval_s'] / 60:.1f} min"
    )


def write_model_card(
    path: Path,
    *,
    command: str,
    cfg: PretrainConfig,
    n_frames: int,
    n_episodes: int,
    n_params: int,
    geometry: tuple[int, int, int],
    wall: dict,
    results: list[dict],
    final_loss: float,
) -> None:
    rows = "\n".join(
        f"| {r['task']} | {'pretraining' if r['task'] in cfg.tasks else 'held-out (zero-shot)'} | "
        f"{r['successes']}/{r['episodes']} | {100 * r['success_rate']:.0f} % | {r['mean_steps']:.0f} |"
        for r in results
    )
    from sim.suites import get_suite

    suite = get_suite(cfg.suite)
    noise_unit = "rad" if suite.name == "franka" else "(action units)"
    spec = asdict(cfg.spec)
    side, patch, shuffle = geometry
    tokens = (side // patch // shuffle) ** 2
    if cfg.data:
        data_line = (
            f"{n_episodes} episodes ({n_frames} frames) of {len(cfg.data)} existing dataset"
            f"{'s' if len(cfg.data) > 1 else ''} (`--data`), not recorded by this run: see the command that recorded "
            "them (an earlier stage's card)"
        )
    else:
        counts = ", ".join(f"{t} {n}" for t, n in zip(cfg.tasks, cfg.episodes_per_task, strict=True))
        data_line = (
            f"{n_episodes} scripted-expert episodes ({n_frames} frames at {suite.fps} Hz, {IMAGE_SIZE}x{IMAGE_SIZE} "
            f"{' + '.join(suite.cameras)} camera{'s' if len(suite.cameras) > 1 else ''}) of\n"
            f"  {counts} episodes; variation presets cycled: {', '.join(cfg.variations)}; execution noise "
            f"{cfg.noise_std} {noise_unit} (clean labels)"
            + (f"; {cfg.hold_frames} frames recorded past each success, the goal held" if cfg.hold_frames else "")
        )
    title = "robosteer embedded base policy" if suite.name == "franka" else f"robosteer {suite.name} base policy"
    text = f"""# {title} (SmolVLA, pretrained from scratch)

A small LeRobot SmolVLA trained from scratch on scripted-expert demonstrations of {suite.description}.
It is a base policy for robosteer to adapt (`--policy embedded` is the Franka one); it is not a general robot policy.

## How it was made
```
{command}
```
- seed: {cfg.seed}; torch threads: {cfg.threads}; machine: {machine_description()}
- data: {data_line}
- training: {cfg.steps} steps, batch {cfg.batch_size}, AdamW lr {cfg.lr} (5 % warm-up, cosine to 10 %), all weights
  trained {"further from the checkpoint given by --init-from" if cfg.init_from else "from random initialisation"}
  (no pretrained VLM weights); final loss {final_loss:.4f}{locate_line(cfg.locate_weight)}
- wall time: {wall_time_line(cfg, wall)}

## Model
- {n_params / 1e6:.2f} M parameters; VLM decoder {spec["vlm"]["text_layers"]} layers x {spec["vlm"]["text_heads"]} heads
  (head_dim {spec["vlm"]["head_dim"]}, {spec["vlm"]["text_kv_heads"]} KV heads), action expert
  {spec["vlm"]["text_layers"]} layers x {spec["vlm"]["text_heads"]} heads, vision encoder {spec["vlm"]["vision_layers"]}
  layers on {side} px images ({side // patch}^2 patches of {patch} px, pixel shuffle {shuffle}: {tokens} tokens per camera);
  chunk {spec["chunk_size"]} actions, {spec["n_action_steps"]} executed per call, {spec["num_steps"]} denoising steps
- tokenizer: word-level, fixed vocabulary generated in code (`robosteer/policies/vlm_folder.py`), folder `vlm/`

## Measured success (no variations, seeded episodes)
| task | role | successes | rate | mean steps |
|---|---|---|---|---|
{rows or "| (not evaluated in this run) | | | | |"}

Evaluation seeds start at {results[0]["seed"] if results else "-"} (disjoint from the recording seeds).
Held-out tasks were never seen in pretraining; low zero-shot success there is expected: they are what few-shot
steering is measured on.
"""
    if cfg.init_from:
        text += earlier_stages_section(Path(cfg.init_from))
    path.write_text(text)


def locate_line(weight: float) -> str:
    if not weight:
        return ""
    return (
        f"\n- auxiliary localisation (`--locate-weight {weight}`): a linear head on the image tokens regressed each "
        "episode's object\n  and target positions during training (the loss above includes it); the head is not "
        "part of the policy"
    )


def earlier_stages_section(init_from: Path) -> str:
    """The ``--init-from`` checkpoint's own "How it was made" (and its earlier stages), so a card lists every stage."""
    card = init_from / "MODEL_CARD.md"
    if not card.is_file():
        return f"\n## Earlier stage\nTrained further from a checkpoint without a MODEL_CARD.md ({init_from.name}).\n"
    earlier = []
    for section in card.read_text().split("\n## ")[1:]:
        title, _, body = section.partition("\n")
        if title.startswith("How it was made"):
            earlier.append("### The --init-from checkpoint (the stage before this one)\n" + body.strip())
        elif title.startswith("Earlier stage"):
            earlier.append(body.strip())
    return "\n## Earlier stages\n" + "\n\n".join(earlier) + "\n"


EVAL_SEED = 900_000
"""First env seed of the evaluation episodes (recording seeds are far below)."""


def evaluate_all(policy, cfg: PretrainConfig) -> list[dict]:
    """Seeded success of every pretraining task, then zero-shot on the suite's held-out tasks."""
    from sim.suites import get_suite

    heldout = [t for t in get_suite(cfg.suite).heldout_tasks if t not in cfg.tasks]
    runs = [(task, cfg.eval_episodes) for task in cfg.tasks if cfg.eval_episodes > 0]
    runs += [(task, cfg.heldout_eval_episodes) for task in heldout if cfg.heldout_eval_episodes > 0]
    return [
        evaluate(policy, task, episodes, EVAL_SEED, progress=True, max_steps=cfg.eval_max_steps)
        for task, episodes in runs
    ]


def run_pretraining(cfg: PretrainConfig, command: str) -> Path:
    """The whole pipeline; returns the checkpoint folder ``out/policy`` (with MODEL_CARD.md)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    wall = {}
    with _progress_display() as progress:
        t0 = time.time()
        roots = _demos_roots(cfg, progress)
        wall["record_s"] = time.time() - t0
        t0 = time.time()
        policy = _initial_policy(cfg, roots)
        demos = _decode_demos(roots, policy, progress)
        wall["decode_s"] = time.time() - t0
        n_episodes = int(demos.episode_end.unique().numel())
        progress.console.print(f"{policy}; {len(demos)} frames, {n_episodes} episodes, tasks {demos.tasks}")
        t0 = time.time()
        losses, summary = train(policy, demos, cfg, progress)
        wall["train_s"] = time.time() - t0
        wall["resumed_from_step"] = summary["resumed_from_step"]
        policy_dir = policy.save(cfg.out / "policy")
    t0 = time.time()
    results = evaluate_all(policy, cfg)
    wall["eval_s"] = time.time() - t0
    (cfg.out / "eval.json").write_text(json.dumps(results, indent=2) + "\n")
    n_params = sum(p.numel() for p in policy.model.parameters())
    write_model_card(
        policy_dir / "MODEL_CARD.md",
        command=command,
        cfg=cfg,
        n_frames=len(demos),
        n_episodes=n_episodes,
        n_params=n_params,
        geometry=image_geometry(policy),
        wall=wall,
        results=results,
        final_loss=sum(losses[-50:]) / len(losses[-50:]),
    )
    return policy_dir


def _demos_roots(cfg: PretrainConfig, progress) -> list[Path]:
    """The demonstrations to train on: ``--data``, the run's own recording when resuming, else a new recording."""
    if cfg.resume:
        check_pretrain_resume(cfg)
    if cfg.data:
        return [Path(root) for root in cfg.data]
    return [cfg.out / "dataset"] if cfg.resume else [record_demos(cfg, progress)]


RESUME_KEYS = ("steps", "batch_size", "lr", "seed")
"""Settings a resumed pretraining run must share with the interrupted one (they fix the schedule and the batches)."""


def check_pretrain_resume(cfg: PretrainConfig) -> None:
    """With ``--resume``: refuse, before any work, a folder without a finished recording (unless ``--data`` gives the
    demonstrations), or a checkpoint trained
    with other steps, batch size, learning rate or seed. A recording without a checkpoint (the run stopped before its
    first checkpoint) trains from step 0 on that recording."""
    from robosteer.tuners.checkpoint import LATEST, read_checkpoint_state

    latest = cfg.out / "checkpoints" / LATEST
    if not cfg.data and not (cfg.out / "dataset" / "meta" / "info.json").is_file():
        raise RobosteerError(
            f"--resume: {cfg.out} holds no finished recording (dataset/) to continue from; pass the --out of the "
            "interrupted run, or drop --resume to start one"
        )
    if not (latest / "state.json").is_file():
        return
    state = read_checkpoint_state(latest)
    saved = state.get("config") or {}
    now = training_config(cfg).to_dict()
    changed = [f"{key} {saved.get(key)} (now {now.get(key)})" for key in RESUME_KEYS if saved.get(key) != now.get(key)]
    saved_weight = state.get("locate_weight", 0.0)
    if saved_weight != cfg.locate_weight:
        changed.append(f"locate_weight {saved_weight} (now {cfg.locate_weight})")
    if changed:
        raise RobosteerError(
            f"--resume: the checkpoint in {latest} was trained with {'; '.join(changed)}; resume with the first "
            "sitting's options"
        )


def _progress_display():
    """The rich progress display of the recording, decoding and training phases."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from robosteer.progress import Progress

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns)


def _initial_policy(cfg: PretrainConfig, roots: list[Path]):
    """The policy training starts from: ``cfg.init_from`` with every weight made trainable, else a freshly
    initialised SmolVLA of ``cfg.spec`` (normalisation statistics from the datasets at ``roots``, pooled)."""
    if cfg.init_from:
        from robosteer.policies.loading import load_policy
        from robosteer.policies.smolvla_builder import unfreeze_for_scratch_training

        policy = load_policy(cfg.init_from)
        unfreeze_for_scratch_training(policy.model)
        return policy
    from robosteer.policies.loading import make_smolvla
    from robosteer.pretrain.data import pooled_metadata

    return make_smolvla(cfg.spec, roots[0] if len(roots) == 1 else pooled_metadata(roots), seed=cfg.seed)


def _decode_demos(roots: list[Path], policy, progress):
    """The demonstrations at ``roots`` decoded to tensors at the policy's image size, with the cameras it reads."""
    from robosteer.pretrain.data import concat_demos, load_demos

    side = image_geometry(policy)[0]
    return concat_demos([load_demos(root, side, list(policy.image_keys), progress) for root in roots])


def image_geometry(policy) -> tuple[int, int, int]:
    """(image side, patch side, pixel-shuffle factor) of a SmolVLA policy: a new model's spec or a checkpoint's."""
    vlm_config = policy.model.model.vlm_with_expert.vlm.config
    side = int(policy.model.config.resize_imgs_with_padding[0])
    return side, int(vlm_config.vision_config.patch_size), int(vlm_config.scale_factor)
