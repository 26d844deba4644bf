"""Configuration of the LM RL experiment (typed; ``--set key=value`` overrides any field).

The model sizes, the optimiser, the groups and the estimator are nested parts
(``--set model.num_layers=4``, ``--set optim.lr=1e-5``, ``--set num_groups=32``,
``--set estimator.name=grpo``, ``--set estimator.options=alpha=0.25``), and so are the training
budget (``--set budget.total=500 --set budget.num_chunks=10``: RL steps) and the cluster
(``--set coordinator=HOST:PORT``); a bare field name works wherever it names one field
(``--set lr=1e-5``).
"""

from __future__ import annotations

import dataclasses

from ordergrad_experiments.common.cluster import ClusterConfig
from ordergrad_experiments.common.config import (
    BudgetConfig,
    EstimatorConfig,
    GroupsConfig,
    OptimConfig,
)


@dataclasses.dataclass(frozen=True)
class TinyQwen3:
    """Sizes of a small Qwen3 (the CPU configuration)."""

    num_layers: int = 2
    embed_dim: int = 128
    hidden_dim: int = 512
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 32


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """SFT warm start + group-sampled RL fine-tuning on a synthetic arithmetic task.

    Defaults are the CPU study size (a tiny Qwen3; a few minutes per run on 2 cores);
    :data:`QUICK` is the smoke size. With ``checkpoint_dir`` set, a real Qwen3 checkpoint and its
    tokenizer are loaded instead of the tiny ``model`` (an accelerator job).
    """

    seed: int = 0
    """RL seed (sampling and prompt order); the SFT warm start has its own ``sft_seed``."""
    # task
    digits: int = 2
    ops: str = "+"
    num_train: int = 4000
    num_heldout: int = 256
    task_seed: int = 0
    scratchpad: float = 0.0
    """Fraction of SFT answers written after the column-sum scratchpad (``tasks.py``; addition
    only). > 0 also lets the checker skip a leading scratchpad and lengthens the completions to
    hold it: the task whose answers come at two lengths (the length-penalty study)."""
    task: str = "arithmetic"
    """``arithmetic`` (``tasks.ArithmeticTask``: uniform problems) or ``carry`` (addition whose
    SFT pool under-represents long carry chains, ``testbed.CarryTask``: a start whose errors
    depend on the prompt)."""
    carry_keep: float = 0.1
    """carry task: a training problem with longest carry chain L is kept with probability
    ``carry_keep ** max(0, L - 1)``. The carry task needs ``sft_smoothing=0`` (its errors are
    the start's own, not label smoothing's)."""
    num_validation: int = 0
    """carry task: a validation split (uniform, disjoint from train and held-out; for step-size
    selection)."""
    num_rl: int = 0
    """carry task: RL samples its prompts from a uniform split of this size (the natural mix,
    disjoint from the others) instead of the SFT pool; 0: from the SFT pool."""
    eval_split: str = "heldout"
    """The prompts of every evaluation: ``heldout``, or (carry task) ``validation`` for
    choosing step sizes away from the held-out prompts."""
    model: TinyQwen3 = dataclasses.field(default_factory=TinyQwen3)
    """The tiny Qwen3's sizes (ignored when ``checkpoint_dir`` is set)."""
    checkpoint_dir: str = ""
    """A Qwen3 folder (config.json, *.safetensors, tokenizer.json) loaded by pretrained.py."""
    # supervised warm start
    sft_seed: int = 0
    sft_steps: int = 2000
    sft_batch: int = 64
    sft_lr: float = 3e-3
    sft_smoothing: float = 0.3
    """Label smoothing of the SFT answers (:func:`sft.smoothed_nll`): the start learns the sums
    but samples a wrong token at each answer position about ``smoothing * (V - 1) / V`` of the
    time. The default start (2000 steps, 0.3) has held-out pass@1 ~0.29 and pass@16 ~0.96 at
    temperature 1 but solves 0.94 with its logits sharpened ten-fold: RL's job is to sharpen
    what the model knows. ``sft_steps=1000 sft_smoothing=0`` gives the same pass@1 and pass@16
    from a model that learned half the sums (0.48 sharpened), from which RL barely moves
    (reports/lm/RESULTS.md, "The default setting")."""
    sft_cache: str = ""
    """Folder caching SFT parameters keyed by the SFT settings: runs that share it start from
    the very same warm start (and skip re-training it)."""
    # RL
    estimator: EstimatorConfig = dataclasses.field(
        default_factory=lambda: EstimatorConfig(name="ordergrad", objective="TopM:2", k=4)
    )
    """Any estimator of og.estimators (ordergrad, grpo, rloo, dr_grpo, maxpo, pkpo, passk_chen,
    cvar_pg with ``options=alpha=0.25``, ...)."""
    groups: GroupsConfig = dataclasses.field(default_factory=lambda: GroupsConfig(16, 16))
    """``num_groups`` prompts per RL step (P) x ``group_size`` completions each (N)."""
    optim: OptimConfig = dataclasses.field(
        default_factory=lambda: OptimConfig(lr=1e-4, grad_clip=1.0)
    )
    """Adam 1e-4, global-norm clip 1: from the default start GRPO, RLOO and OrderGrad TopM:2@4
    gain +0.25 held-out pass@1 within 100 steps (reports/lm/RESULTS.md). Not tuned further;
    from the old start 3e-4 and 1e-3 collapsed the policy."""
    budget: BudgetConfig = dataclasses.field(
        default_factory=lambda: BudgetConfig(total=300, num_chunks=6)
    )
    """The training budget in RL steps (updates): the ``budget.total`` RL steps run in
    ``budget.num_chunks`` (<= total) nearly equal chunks, one checkpoint and one held-out
    evaluation after each."""
    temperature: float = 1.0
    top_p: float = 1.0
    ppo_epochs: int = 1
    """Passes over each batch; > 1 uses the PPO ratio clipped at 1 +- clip_eps."""
    learn_cpu_fusions: tuple[str, ...] = ("dot", "eltwise")
    """On XLA:CPU, the learn phase is compiled with these YNNPACK library fusions (XLA's
    ``xla_cpu_experimental_ynn_fusion_type``; any of dot, eltwise, reduce; ``()`` for XLA's
    defaults): matrix products fused with their element-wise neighbours make the learner about
    20% faster (reports/lm/RESULTS.md, "Speed"). Ignored on GPU/TPU, under ``JAX_ENABLE_X64``
    and, with a warning, by a jaxlib that does not know the option
    (:func:`rl.learn_compiler_options`)."""
    clip_eps: float = 0.2
    kl_coef: float = 0.0
    """Weight of the k3 KL estimate to the reference (SFT) policy."""
    length_penalty: float = 0.0
    """Reward -= length_penalty * tokens / max tokens (enters the ordering)."""
    # evaluation and logging
    eval_prompts: int = 256
    eval_samples: int = 16
    pass_ks: tuple[int, ...] = (1, 2, 4, 8, 16)
    count_samples: int = 0
    """> 0: also count the correct completions of each of the ``eval_prompts`` held-out prompts
    out of ``count_samples`` (<= 255) at the start and after every chunk, with common random
    numbers across runs, into the run folder's ``counts.npz`` (``testbed.py``: any pass@k
    can be recomputed from it)."""
    logger: tuple[str, ...] = ("jsonl",)
    """Where the metric rows go besides ``metrics.jsonl`` (always written): any of ``jsonl``
    (nothing more), ``tensorboard`` (event files in the run folder's ``tensorboard/``),
    ``wandb`` (a W&B run, offline unless ``WANDB_MODE`` says otherwise):
    ``--set logger=tensorboard,wandb`` (``experiments/common/loggers.py``)."""
    # distribution
    mesh: tuple[int, ...] = (1, 1)
    """Device mesh: (data, model) or (data, fsdp, model); the product must equal the number of
    devices. E.g. --set mesh=4,2."""
    cluster: ClusterConfig = dataclasses.field(default_factory=ClusterConfig)
    """Several processes, one JAX cluster (``experiments/common/cluster.py``): ``--set
    multihost=True`` (detected: TPU pod slices, SLURM) or ``--set coordinator=HOST:PORT --set
    num_processes=P --set process_id=I``; joined before any other JAX call."""


QUICK = LMConfig(
    num_train=2000,
    num_heldout=64,
    model=TinyQwen3(num_layers=1, embed_dim=64, hidden_dim=256, head_dim=16),
    sft_steps=60,
    sft_batch=32,
    budget=BudgetConfig(total=4, num_chunks=2),
    groups=GroupsConfig(num_groups=4, group_size=8),
    optim=OptimConfig(lr=1e-4, grad_clip=1.0),
    eval_prompts=16,
    eval_samples=8,
    pass_ks=(1, 2, 4, 8),
)
