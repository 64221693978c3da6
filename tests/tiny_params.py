"""The overrides that make every pipeline step take seconds, shared by the end-to-end tests (demo, kfp.local,
DVC): a small RQ-VAE, SEQ tasks only, a random tiny LLaMA for a few steps, 8 evaluated users, a narrow beam."""

TINY_STEPS = [
    "embed.encoder=minilm", "embed.max_length=32", "embed.batch_size=128",
    "quantize.epochs=3", "quantize.codebook_size=32", "quantize.code_dim=8", "quantize.kmeans_iters=5",
    "user_index.epochs=3", "user_index.max_length=32", "user_index.batch_size=128", "user_index.code_dim=8",
    "tasks.families=[seq]", "tasks.epochs=1", "tasks.valid_templates=1",
    "train.backbone=tiny-llama", "train.max_steps=2", "train.batch_size=4", "train.max_len=128",
    "train.save_steps=100", "train.eval_rows=8", "train.eval_steps=0", "train.best_on_valid=false",
    "train.max_minutes=0",
    "evaluate.max_users=8", "evaluate.ite=false", "evaluate.title_items=0", "evaluate.templates=[seq/0]",
    "decode.beam_width=10", "decode.top_k=10",
]

TINY_BASELINES = ["sasrec.epochs=1", "sasrec.max_minutes=0.2", "sasrec.stride=0"]

# ...on ML-100K's 5-star ratings only, without the Feast materialisation (the DVC test keeps the whole data set
# and the features stage as they are: it checks the split's statistics and every stage)
TINY = ["data.min_rating=5", *TINY_STEPS, "features.materialize=false"]
