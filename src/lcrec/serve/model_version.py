"""A served model version: the tuned model + tokenizer (fixed for the life of the process) and an index state
(index version, trie, titles) that the live re-index replaces.

Serving folder layout (``build_serving_folder`` writes it; ``serve.model_uri`` points at it or at an MLflow URI
holding it)::

    model/                  the ``lcrec train`` model folder (adapter or full weights, tokenizer, lcrec_model.json)
    index/                  the index store (see lcrec.serve.index_store): current + versions/<v>/
    retriever/              optional: the baselines step's SASRec-CE (lcrec.baselines.retriever), the rank mode's
                            candidate retriever
    serving.json            model_version id, next-item template, max history, training families

The prompt is a next-item prompt the model was trained on: template ``template`` (``seq/0``..., or ``seqall/0``...
for a model tuned with SEQ-all; a bare number is a SEQ wording) with ``{history}`` = the codes of the last
``max_history`` items joined with ", " (:func:`lcrec.tasks.templates.next_item_prompt`), tokenised with special
tokens as the training collator does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lcrec.decode.trie import CodeTrie
from lcrec.model.trained import ModelManifest
from lcrec.quantize.index_file import code_tokens, read_index
from lcrec.serve import index_store
from lcrec.tasks.templates import default_next_item_template, next_item_prompt, next_item_template

log = logging.getLogger(__name__)

SERVING_JSON = "serving.json"
MODEL_SUBDIR = "model"
INDEX_SUBDIR = "index"
RETRIEVER_SUBDIR = "retriever"
USER_TEMPLATE = "useq/0"  # the prompt of a user with a code, for a model trained with the useq family


def seq_prompt(history_codes: list[str], template: str | int = "seq/0", user_code: str = "") -> str:
    """The next-item prompt for a history given as code strings (oldest first), exactly as in training; a
    ``useq`` template names the user by ``user_code``."""
    try:
        return next_item_prompt(", ".join(history_codes), template, user_code)
    except ValueError as err:
        raise ValueError(f"serve.template: {err}") from None


def is_auto(template: str | int) -> bool:
    """True for serve.template ``auto`` (or empty): the template the serving folder records."""
    return str(template).strip().lower() in ("auto", "")


def template_id(template: str | int, families: list[str] | tuple[str, ...] = ()) -> str:
    """``template`` as a template id (``0`` -> ``seq/0``; ``auto`` -> the first wording of a next-item task in
    ``families``, the model's training families); a ValueError naming serve.template if it is none."""
    if is_auto(template):
        return default_next_item_template(families)
    try:
        return next_item_template(template).id
    except ValueError as err:
        raise ValueError(f"serve.template: {err}") from None


@dataclass
class IndexState:
    """One index version as the predictor serves it. Never mutated after it is built (a swap replaces it)."""

    version: str
    folder: Path
    trie: CodeTrie
    codes: dict[str, str]  # item_id -> code string "<a_1><b_2>..."
    titles: dict[str, str]
    unservable: list[str] = field(default_factory=list)  # items whose code tokens the tokenizer lacks

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.codes


def load_index_state(folder: str | Path, tokenizer: Any, previous: IndexState | None = None) -> IndexState:
    """Read one index version folder and build its trie. With ``previous`` (an older version of the same
    lineage) the previous trie is copied and only the new items are added."""
    folder = Path(folder)
    index = read_index(folder)
    vocab = tokenizer.get_vocab()
    tokens = code_tokens(index.codes)
    codes = {item_id: "".join(toks) for item_id, toks in zip(index.item_ids, tokens, strict=True)}
    trie: CodeTrie | None = None
    if (previous is not None and previous.trie.depth == index.num_levels
            and all(codes.get(i) == c for i, c in previous.codes.items())):  # same lineage: only adds
        trie = previous.trie.copy()
    trie = trie or CodeTrie(index.num_levels)
    unservable = []
    for item_id, toks in zip(index.item_ids, tokens, strict=True):
        if item_id in trie:
            continue
        ids = [vocab.get(t) for t in toks]
        if any(i is None for i in ids):
            unservable.append(item_id)
            continue
        trie.add(item_id, ids)
    if unservable:
        log.warning(
            "%d item(s) of index %s use code tokens the model's tokenizer lacks (e.g. %s) and cannot be "
            "recommended; retrain with every codebook token added", len(unservable), folder, unservable[:3]
        )
    titles = index_store.read_titles(folder)
    return IndexState(index.version or folder.name, folder, trie, codes, titles, unservable)


@dataclass
class ServedModel:
    """The tuned model and its tokenizer, plus how prompts are built."""

    model: Any
    tokenizer: Any
    model_version: str
    template: str = "seq/0"
    max_history: int = 20
    families: tuple[str, ...] = ()  # the training families (the rank mode needs "rank")
    user_codes: dict[str, str] = field(default_factory=dict)  # user -> code, when trained with the user in the prompt
    user_template: str = USER_TEMPLATE

    def user_code(self, user_id: str | None) -> str:
        """The code to name ``user_id`` by in the prompt: "" when the model was not trained with the user in the
        prompt (no ``useq`` family) or does not know the user (its prompt is then history-only)."""
        return self.user_codes.get(str(user_id), "") if user_id is not None and self.user_codes else ""

    def use_template(self, template: str | int) -> None:
        """Serve with ``template`` (serve.template); ``auto`` keeps the one the serving folder recorded."""
        if not is_auto(template):
            self.template = template_id(template)

    def prompt_ids(self, history_codes: list[str], user_code: str = "") -> list[int]:
        """The next-item prompt's token ids: the served template, or with ``user_code`` the user-in-prompt one."""
        shown = history_codes[-self.max_history:] if self.max_history > 0 else history_codes
        text = seq_prompt(shown, self.user_template, user_code) if user_code else seq_prompt(shown, self.template)
        return self.tokenizer(text, add_special_tokens=True)["input_ids"]

    def rank_prompt_ids(self, history_codes: list[str], candidate_codes: list[str]) -> list[int]:
        """The rank prompt (history + lettered candidates, :func:`lcrec.tasks.rank.rank_prompt`) as token ids."""
        from lcrec.tasks.rank import rank_prompt

        shown = history_codes[-self.max_history:] if self.max_history > 0 else history_codes
        return self.tokenizer(rank_prompt(shown, candidate_codes), add_special_tokens=True)["input_ids"]


def model_version_id(model_dir: Path) -> str:
    """A content id of a model folder (sha256 over its files' names and bytes)."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
        h.update(str(f.relative_to(model_dir)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return "m-" + h.hexdigest()[:16]


def copy_retriever(retriever_dir: str | Path | None, out_dir: Path) -> bool:
    """Put the retriever of ``retriever_dir`` (when it holds one) into the serving folder, replacing any older one
    atomically; remove a stale one otherwise. True when the folder now has a retriever."""
    from lcrec.baselines.retriever import has_retriever

    target = out_dir / RETRIEVER_SUBDIR
    tmp = out_dir / ".retriever.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if not has_retriever(retriever_dir):
        shutil.rmtree(target, ignore_errors=True)
        return False
    shutil.copytree(retriever_dir, tmp)
    old = out_dir / ".retriever.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return True


def build_serving_folder(model_dir: str | Path, index_dir: str | Path, items: pd.DataFrame | None,
                         out_dir: str | Path, template: str | int = "auto", max_history: int = 20,
                         retriever_dir: str | Path | None = None) -> dict[str, Any]:
    """Assemble a serving folder from a ``lcrec train`` model folder, a ``lcrec quantize`` index folder, the
    catalogue (item_id, title) and, for the rank mode, the baselines step's retriever folder. An existing index
    store in ``out_dir/index`` is kept (it may hold re-indexed versions)."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not (model_dir / "lcrec_model.json").exists():
        raise FileNotFoundError(f"{model_dir}: not a trained model folder (no lcrec_model.json); run `lcrec train` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    version = model_version_id(model_dir)
    target = out_dir / MODEL_SUBDIR
    meta_path = out_dir / SERVING_JSON
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if old.get("model_version") != version or not target.exists():
        tmp = out_dir / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(model_dir, tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    store = index_store.init_store(out_dir / INDEX_SUBDIR, index_dir, items)
    families = ModelManifest.families_of(model_dir)
    retriever = copy_retriever(retriever_dir, out_dir)
    meta = {"model_version": version, "template": template_id(template, families), "max_history": max_history,
            "families": families, "retriever": retriever}
    meta_path.write_text(json.dumps(meta, indent=1))
    return {**meta, "index_version": store["version"], "folder": str(out_dir)}


def resolve_model_uri(uri: str, download_dir: str | Path, tracking_uri: str | None = None) -> Path:
    """A local serving folder for ``uri``: a local path as is; ``models:/...`` or ``runs:/...`` downloaded
    from MLflow (``tracking_uri``, else MLFLOW_TRACKING_URI) into ``download_dir`` (a registered pyfunc
    model's ``artifacts/serving``, see lcrec.tracking.pyfunc_model)."""
    if uri.startswith(("models:/", "runs:/", "mlflow-artifacts:/")):
        import mlflow

        dst = Path(download_dir)
        dst.mkdir(parents=True, exist_ok=True)
        from lcrec.tracking.pyfunc_model import serving_folder_of

        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst),
                                                              tracking_uri=tracking_uri or None))
        return serving_folder_of(local)
    path = Path(uri)
    if not (path / MODEL_SUBDIR).exists():
        raise FileNotFoundError(
            f"{path} is not a serving folder (no {MODEL_SUBDIR}/ inside); build one with `lcrec serve` defaults "
            "or pass models:/<name>@<alias>"
        )
    return path


def load_served_model(folder: str | Path, device: str = "cpu", dtype: str = "auto") -> ServedModel:
    """Load ``folder/model`` (LoRA adapters merged for speed) and the serving settings."""
    from lcrec.model.device import resolve_dtype
    from lcrec.model.trained import load_trained

    folder = Path(folder)
    meta_path = folder / SERVING_JSON
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    torch_dtype = resolve_dtype(dtype, device, "serve.dtype")
    model, tok = load_trained(folder / MODEL_SUBDIR, dtype=torch_dtype, merge=True)
    model = model.to(device).eval()
    version = meta.get("model_version") or model_version_id(folder / MODEL_SUBDIR)
    families = ModelManifest.families_of(folder / MODEL_SUBDIR)
    template = template_id(meta.get("template", "auto"), families)
    user_codes = served_user_codes(folder / MODEL_SUBDIR, families)
    return ServedModel(model, tok, version, template, int(meta.get("max_history", 20)), tuple(families), user_codes)


def served_user_codes(model_dir: Path, families: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The user codes a model folder ships (``user_codes.json``, written by the train step) when the model was
    trained with the user in the prompt (the useq family); {} otherwise, so its prompts stay history-only."""
    from lcrec.tasks.tasks import USER_CODES, read_user_codes_file

    if "useq" not in families:
        return {}
    return dict(read_user_codes_file(Path(model_dir) / USER_CODES).get("codes", {}))
