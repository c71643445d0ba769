"""Config sections owned by the training stage: ``model:`` and ``train:`` (``data:`` is the data room's).

Standard library only, so that loading a config never imports torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Union, get_args

from ..runtime.checks import at_least as _at_least
from ..runtime.errors import ConfigError

Method = Literal["source_only", "target_oracle", "dann", "pose_adv", "disentangle", "cal", "pixel_da",
                 "self_train"]
#: Every method name, read from the ``Method`` literal (one list, not two).
METHOD_NAMES: Tuple[str, ...] = get_args(Method)


@dataclass
class ModelConfig:
    """The network: a plain ``torch.nn`` backbone plus an expression head."""

    backbone: Literal["tiny", "mobilenet", "resnet18"] = "resnet18"
    width: float = 1.0
    feature_dim: int = 128
    dropout: float = 0.2
    #: Average each face with its mirror image at inference (inside the exported graph, one batched pass): expressions
    #: are left-right symmetric, so two looks cost 2x the classifier's compute and gain on real faces (FER2013
    #: source-val 65.1 -> 65.9 % for the real recipe's model). Training is unchanged.
    flip_average: bool = False


@dataclass
class TargetTermsConfig:
    """The label-free target terms every adaptation method may add (``base.target_companion_terms``).

    ``im_weight`` adds the information-maximisation loss on target predictions (entropy min + diversity);
    ``mcc_weight`` the minimum-class-confusion loss (``mcc_temperature``, 2.5 as the paper).
    ``self_training`` weighs FixMatch-style pseudo-labelling of the target (``base.self_training_term``):
    the clean target face's confident prediction (max-softmax ≥ ``pseudo_threshold``) is the label of its
    augmented copy. ``warmup`` is the fraction of training before the method's target terms start (the
    classifier learns the source first). All off by default: on the dev world none of them helped
    (docs/results/dev-cabin-remedies.md); ``benchmarks/overlays/`` holds the settings that were measured.
    """

    warmup: float = 0.1
    im_weight: float = 0.0
    mcc_weight: float = 0.0
    mcc_temperature: float = 2.5
    self_training: float = 0.0
    pseudo_threshold: float = 0.9
    #: with ``pseudo_quantile`` q > 0 only the faces above the q-quantile of their predicted class's confidences within
    #: the batch are labelled (class-balanced selection: every class supplies labels)
    pseudo_quantile: float = 0.0

    def __post_init__(self) -> None:
        for name in ("im_weight", "mcc_weight", "self_training"):
            _at_least(self, name, 0.0)
        _at_least(self, "mcc_temperature", 0.0, strict=True)
        _at_least(self, "warmup", 0.0, 1.0)
        _at_least(self, "pseudo_threshold", 0.0, 1.0)
        _at_least(self, "pseudo_quantile", 0.0, 1.0)


@dataclass
class SelfTrainConfig(TargetTermsConfig):
    """``self_train``: the same self-training term, on by default (``self_training`` 1) and at a threshold of 0.5
    (``pseudo_threshold``): a head shifted to the target's class balance (``train.target_prior``) is rarely 0.9
    sure of a face, and at 0.5 it was right on 77-85 % of the third of BUAA's dev-half faces it labelled."""

    self_training: float = 1.0
    pseudo_threshold: float = 0.5


@dataclass
class AdversaryConfig(TargetTermsConfig):
    """An adversarial method's strength: ``lambda_max`` scales the Ganin schedule ``2/(1+exp(-10p))-1``,
    which stays 0 during ``warmup`` (the "adaptation can hurt" defaults: small, warmed-up λ)."""

    lambda_max: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least(self, "lambda_max", 0.0)


@dataclass
class MLPAdversaryConfig(AdversaryConfig):
    """An adversary whose discriminators are MLPs on features: ``hidden`` units, ``dropout``."""

    hidden: int = 256
    dropout: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least(self, "hidden", 1)
        _at_least(self, "dropout", 0.0, 1.0)


@dataclass
class DannConfig(MLPAdversaryConfig):
    """DANN: one domain discriminator on the backbone features behind a gradient-reversal layer.

    ``conditional``: CDAN's discriminator on features ⊗ class predictions (aligns per predicted class,
    robust to a class-balance shift); ``entropy_weighting``: CDAN+E's confidence weights;
    ``importance_weighting``: IWDAN's source weights ``p_t(y)/p_s(y)`` from running class priors
    (``prior_momentum``), the target prior estimated from the classifier's mean target probabilities
    (``prior_estimate: softmax``) or, as the IWDAN paper, by black-box shift estimation from the source
    confusion matrix and the target's predicted-class frequencies (``confusion``).
    """

    #: the Ganin schedule at full strength: chosen on the dev world (data.synth.seed=1) over 3 seeds, 39.1 % vs
    #: 36.4 % at 0.3 and 34.6 % source-only (docs/results/dev-adaptation-methods.md)
    lambda_max: float = 1.0
    conditional: bool = False
    entropy_weighting: bool = False
    importance_weighting: bool = False
    prior_momentum: float = 0.95
    prior_estimate: Literal["softmax", "confusion"] = "softmax"


@dataclass
class PoseAdvConfig(MLPAdversaryConfig):
    """Pose-aware adversarial adaptation. Yaw (degrees) is binned at ``pose_bins`` edges and pitch at
    ``pitch_bins`` edges; a pose class is the (yaw bin, pitch bin) pair. ``pitch_bins: []`` (default)
    is yaw only. ``cross_on_target`` also runs the pose-from-expression cross-adversary on target faces
    whose pose is known. Both are off here (a dataset without pose gains nothing from them); the
    pitch-aware variant (``pitch_bins: [-15, -5]``, ``cross_on_target: true``) won on the dev world, 37.8 % vs
    31.3 % over 3 seeds (``docs/results/dev-pose-adv-and-mcc.md``), and the training benchmark runs it from
    ``benchmarks/overlays/methods.yaml``; pose_adv itself does not beat source-only, so nothing ships it."""

    pose_bins: List[float] = field(default_factory=lambda: [-30.0, -10.0, 10.0, 30.0])
    pitch_bins: List[float] = field(default_factory=list)
    cross_on_target: bool = False
    pose_dim: int = 32
    pose_width: float = 0.5
    pose_weight: float = 0.5
    cross_weight: float = 0.1
    recon_weight: float = 0.5
    recon_size: int = 16
    use_target_pose: bool = True


@dataclass
class DisentangleConfig(MLPAdversaryConfig):
    """Expression vs identity disentanglement (max-entropy adversaries) plus the DANN domain term."""

    id_dim: int = 32
    id_width: float = 0.5
    id_weight: float = 0.5
    adv_weight: float = 0.1
    domain_weight: float = 1.0
    recon_weight: float = 0.0
    recon_size: int = 16


@dataclass
class CalConfig(TargetTermsConfig):
    """Contrastive adversarial learning: weak expressions pulled toward strong ones in D's embedding.

    CAL's discriminator is weighed by ``cal_weight`` (not a λ schedule) and stepped by its own Adam
    (``d_lr``, ``d_betas``); ``hidden``/``dropout`` size its MLP."""

    hidden: int = 256
    dropout: float = 0.5
    intensity_threshold: float = 0.5
    embed_dim: int = 32
    margin: float = 1.0
    cal_weight: float = 0.1
    d_lr: float = 1e-4
    d_betas: Tuple[float, float] = (0.5, 0.9)

    def __post_init__(self) -> None:
        super().__post_init__()
        _at_least(self, "hidden", 1)
        _at_least(self, "dropout", 0.0, 1.0)


@dataclass
class PixelDAConfig(AdversaryConfig):
    """Pixel-level adaptation: a generator re-renders labelled source faces in the target camera's look.

    ``lambda_max`` weighs the generator's adversarial (LSGAN) term after ``warmup``; ``task_weight`` the
    cross-entropy on translated faces; ``content_weight`` the PMSE that keeps them close to the originals.
    ``task_through_generator`` lets that cross-entropy train the generator too (PixelDA's joint training);
    off, the generator answers only to the discriminator and the content loss.
    ``g_width``/``g_blocks`` size the generator, ``g_lr_mult`` its learning rate (× ``train.lr``);
    ``d_width``, ``d_layers`` (patch size), ``d_lr`` and ``d_betas`` the patch discriminator and its own Adam.
    """

    lambda_max: float = 1.0
    warmup: float = 0.0
    task_weight: float = 1.0
    content_weight: float = 0.1
    g_width: int = 16
    g_blocks: int = 2
    g_lr_mult: float = 1.0
    task_through_generator: bool = False
    d_width: int = 16
    d_layers: int = 3
    d_lr: float = 2e-4
    d_betas: Tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("task_weight", "content_weight", "g_lr_mult"):
            _at_least(self, name, 0.0)
        for name in ("g_width", "d_width", "d_layers"):
            _at_least(self, name, 1)
        _at_least(self, "g_blocks", 0)
        _at_least(self, "d_lr", 0.0, strict=True)


@dataclass
class AugmentConfig:
    """``train.augment``: everything off means the batch passes through untouched.

    ``flip``: mirror half the faces left-right (expressions are left-right symmetric).
    ``shift``: translation up to this fraction of the crop size; ``scale``: zoom in ``[1-s, 1+s]``;
    ``rotate``: in-plane rotation up to this many degrees — the jitter a face detector's box has.
    ``brightness`` / ``contrast``: ``x·c + b`` on the normalised input with ``c ∈ [1-contrast, 1+contrast]``
    and ``b ∈ [-brightness, brightness]`` (in units of the preprocessing std).
    ``pitch`` / ``yaw``: re-render the face as seen from up to this many degrees above/below and
    left/right, on an ellipsoid head prior (train/viewpoint.py) — the camera-viewpoint gap that a 2D
    warp cannot produce. Symmetric, so it favours no particular camera.
    ``spectral``: probability of showing a labelled *colour* face as a red-weighted gray view that imitates a
    near-infrared camera (pale lips, even skin; train/spectral.py). The views are made once when the source is
    decoded; gray sources are unaffected.
    ``erase``: probability of random erasing (Zhong et al. 2020): one rectangle of 2-33 % of the face, aspect
    0.3-3.3, set to 0 (the normalised mean) -- a hand, a steering wheel or a glare that hides part of the face.
    """

    flip: bool = False
    shift: float = 0.0
    scale: float = 0.0
    rotate: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    spectral: float = 0.0
    erase: float = 0.0

    def __post_init__(self) -> None:
        for name in ("shift", "scale", "brightness", "contrast", "spectral", "erase"):
            _at_least(self, name, 0.0, 1.0)
        _at_least(self, "rotate", 0.0, 180.0)
        for name in ("pitch", "yaw"):  # beyond ~45° the far side of the head, which the crop never saw, shows
            _at_least(self, name, 0.0, 45.0)

    def active(self) -> bool:
        return bool(self.flip or self.shift or self.scale or self.rotate or self.brightness or self.contrast
                    or self.pitch or self.yaw or self.erase)


@dataclass
class FinetuneConfig:
    """``train.finetune``: adaptation as a fine-tuning of the finished source-only model.

    With ``enabled``, every adaptation method (not ``source_only``, not the ``target_oracle``) starts from the
    source-only checkpoint trained beside it (or ``train.init_from`` when given) and trains for ``epochs`` at
    ``lr`` instead of the source-only schedule: it pays only for the adaptation, and its result is compared with the
    very model it started from. Off, each method trains from scratch with the full schedule.
    """

    enabled: bool = False
    epochs: int = 6
    lr: float = 0.01

    def __post_init__(self) -> None:
        _at_least(self, "epochs", 1)
        _at_least(self, "lr", 0.0, strict=True)


#: methods that never fine-tune from the source-only model: source-only itself, and the oracle (it learns the
#: target's labels from scratch: the ceiling, not an adaptation)
NOT_FINETUNED = ("source_only", "target_oracle")


def method_config(cfg, method: str, source_checkpoint: Optional[str] = None):
    """The config one method's run trains with: ``cfg`` itself, or under ``train.finetune`` (for an adaptation
    method) the fine-tuning schedule starting from ``train.init_from`` or ``source_checkpoint``. One rule for the
    ``train`` verb, the pipeline and the benchmarks."""
    import dataclasses

    t = cfg.train
    if not t.finetune.enabled or method in NOT_FINETUNED:
        return cfg
    start = t.init_from or source_checkpoint
    if not start:
        raise ConfigError(f"train.finetune: {method} fine-tunes a source-only model, but none is given: train "
                          f"source_only in the same run (--method source_only,{method}) or set train.init_from")
    ft = t.finetune
    return dataclasses.replace(cfg, train=dataclasses.replace(t, init_from=str(start), epochs=ft.epochs, lr=ft.lr))


@dataclass
class TrainConfig:
    """The one trainer loop; method-specific settings live under ``train.<method>``."""

    #: ``fer-edge train``'s method. The pipeline (and ``--method all``) trains it together with ``methods`` and
    #: source-only, and exports the best by the label-free ``method_selector``.
    method: Method = "pixel_da"
    methods: List[Method] = field(default_factory=lambda: ["source_only", "pixel_da", "target_oracle"])
    epochs: int = 8
    steps_per_epoch: Optional[int] = None
    batch_size: int = 64
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 3e-3
    weight_decay: float = 5e-4
    backbone_lr_mult: float = 1.0
    lr_anneal: bool = True
    #: ``ganin``: ``lr0/(1+10p)^0.75`` (the DANN papers'; ends at lr0/6); ``cosine``: linear warm-up over
    #: ``warmup`` of the steps, then half a cosine to 0 -- on real faces the short schedules gain most in the last
    #: low-lr epochs (docs/results/real-faces.md). Ignored when ``lr_anneal`` is false (constant lr).
    schedule: Literal["ganin", "cosine"] = "ganin"
    warmup: float = 0.0
    #: Label smoothing of the expression cross-entropy (every method): FER2013's labels are noisy.
    label_smoothing: float = 0.0
    #: ``bf16``: autocast the forward passes to bfloat16 (CPU AMX/AVX-512-bf16 or CUDA): about 1.4x faster per
    #: step for resnet18 on these CPUs; weights, optimiser and BatchNorm statistics stay float32.
    amp: Literal["none", "bf16"] = "none"
    seed: int = 0
    #: Which epoch of a run becomes ``best.pt``: a label-free score, or ``last`` (for a schedule that anneals to the
    #: end, where a mid-run checkpoint is simply unfinished: on FER2013 ``im`` picked epoch 13 of 30, 56.5 % source-val
    #: against the last epoch's 65.2 %).
    selector: Literal["im", "snd", "dev", "source_val", "last"] = "im"
    #: Which *method's* run is exported when several were trained: the label-free score of each run's selected
    #: checkpoint on the unlabelled target_val split (the target oracle is never eligible).
    method_selector: Literal["im", "snd", "dev", "source_val"] = "im"
    balanced: bool = False
    source_val_fraction: float = 0.1
    adabn: bool = False
    #: The class balance the target camera's predictions are shifted to, label-free, by logit offsets baked into the
    #: head (``train/target_prior.py``): ``none``, ``source`` (the labelled source's frequencies), ``uniform`` or
    #: ``{label: frequency}``. Off by default: it assumes the camera's class balance is known.
    target_prior: Union[Literal["none", "source", "uniform"], Dict[str, float]] = "none"
    bn_stats: Literal["source", "target", "both"] = "source"
    ema: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    eval_limit: Optional[int] = None
    feature_samples: int = 300
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # NHWC conv weights: about 30 % less CPU time per training step and 2.5x faster evaluation for the
    # depthwise convolutions of `mobilenet` on oneDNN (docs/train.md); numerics differ only by rounding.
    channels_last: bool = True
    #: ``torch.compile`` the backbone (inductor): 1.7x faster training steps for resnet18 at half width on these
    #: 2 cores (146 vs 260 ms at batch 128, bf16), after ~20 s of compiling per graph (train, eval). Falls back
    #: to eager with a warning where compiling is impossible (no C++ compiler).
    compile: bool = False
    target_identity: Optional[str] = None
    #: Start from this checkpoint's weights (a ``best.pt`` of the same model, labels and preprocessing) instead of a
    #: random initialisation: adaptation as a fine-tuning of a finished source-only model, so the adapted model is
    #: compared with the very model it started from and pays only for the adaptation epochs.
    init_from: Optional[str] = None
    dann: DannConfig = field(default_factory=DannConfig)
    pose_adv: PoseAdvConfig = field(default_factory=PoseAdvConfig)
    disentangle: DisentangleConfig = field(default_factory=DisentangleConfig)
    cal: CalConfig = field(default_factory=CalConfig)
    pixel_da: PixelDAConfig = field(default_factory=PixelDAConfig)
    self_train: SelfTrainConfig = field(default_factory=SelfTrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self) -> None:
        _at_least(self, "epochs", 1)
        _at_least(self, "steps_per_epoch", 1)
        _at_least(self, "batch_size", 2)  # BatchNorm needs two samples per pass
        _at_least(self, "lr", 0.0, strict=True)
        _at_least(self, "weight_decay", 0.0)
        _at_least(self, "backbone_lr_mult", 0.0)
        _at_least(self, "seed", 0)
        _at_least(self, "ema", 0.0, 0.9999)
        _at_least(self, "source_val_fraction", 0.0, 0.9)
        _at_least(self, "eval_limit", 1)
        _at_least(self, "warmup", 0.0, 0.5)
        _at_least(self, "label_smoothing", 0.0, 0.5)
        from .target_prior import check_setting  # numpy and the label aliases: not at this module's import

        check_setting(self.target_prior)
