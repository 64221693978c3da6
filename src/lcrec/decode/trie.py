"""CodeTrie: the prefix trie of every item's code sequence, the constraint of generative retrieval.

Every item has a code of ``depth`` tokens (LC-Rec: ``<a_12><b_201><c_7><d_88>``, one added token per level).
The trie answers "which tokens may follow this prefix" exactly, so a decoder that only follows trie edges can
only write codes of real items (LC-Rec's reference decoder uses one token set per position instead, which lets
cross-level combinations that are no item through).

Layout. Nodes are numbered per depth: depth 0 holds the root (node 0), depth ``d + 1`` holds the children of
depth ``d``; nodes at depth ``depth`` are leaves, and a leaf holds the item(s) whose code is that path. Each depth
``d`` has its own small vocabulary ``level_tokens[d]`` (the token ids seen at that depth, in first-seen order) and
a dense transition table ``children[d][node, column] -> child node or -1``. On the GPU the mask of a whole batch
of beams at depth ``d`` is then one gather: ``children[d][beam_nodes]`` (see :meth:`CodeTrie.to_tensors`).

Adding an item (:meth:`CodeTrie.add`) touches ``depth`` table cells (tables grow by doubling), so the live
re-index can insert new items without a rebuild; :meth:`to_tensors` re-uploads the (small) tables only after a
change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch


class TrieError(ValueError):
    """An index or code that cannot go into the trie (wrong length, unknown token, conflicting item)."""


@dataclass
class TrieTensors:
    """The trie as tensors on one device (see the module docstring for the layout).

    ``level_tokens[d]``: LongTensor [C_d], the token ids allowed somewhere at depth d.
    ``children[d]``: LongTensor [n_nodes_d, C_d], child node id at depth d + 1, or -1 where there is no edge.
    ``token_to_column[d]``: LongTensor [vocab_size] mapping a token id to its column at depth d or -1
    (only when ``to_tensors`` got a ``vocab_size``; the HF logits processor needs it).
    """

    depth: int
    level_tokens: list[torch.Tensor]
    children: list[torch.Tensor]
    token_to_column: list[torch.Tensor] | None
    version: int

    @property
    def device(self) -> torch.device:
        return self.children[0].device


class CodeTrie:
    """Prefix trie over item codes (token-id tuples of one fixed length)."""

    def __init__(self, depth: int):
        if depth < 1:
            raise TrieError(f"a code needs at least one token, got depth={depth}")
        self.depth = depth
        self._level_tokens: list[list[int]] = [[] for _ in range(depth)]
        self._column: list[dict[int, int]] = [{} for _ in range(depth)]
        self._n_nodes: list[int] = [1] + [0] * depth  # per depth 0..depth (leaves at `depth`)
        self._tables: list[np.ndarray] = [np.full((1, 4), -1, dtype=np.int64)]
        for _ in range(1, depth):
            self._tables.append(np.full((4, 4), -1, dtype=np.int64))
        self._leaf_items: list[list[str]] = []
        self._leaf_code: list[tuple[int, ...]] = []
        self._item_leaf: dict[str, int] = {}
        self.version = 0
        self._tensor_cache: dict[tuple[str, int | None], TrieTensors] = {}

    # ------------------------------------------------------------------------------------------- building
    @classmethod
    def from_sequences(cls, codes: Mapping[str, Sequence[int]]) -> CodeTrie:
        """Build from ``{item_id: (token_id, ...)}``; every code must have the same length."""
        if not codes:
            raise TrieError("cannot build a trie from an empty index: it holds no item")
        lengths = {len(c) for c in codes.values()}
        if len(lengths) != 1:
            sample = {n: next(i for i, c in codes.items() if len(c) == n) for n in sorted(lengths)}
            raise TrieError(
                f"item codes must all have the same length, found lengths {sorted(lengths)} "
                f"(e.g. {sample}); re-run the quantize step so every item gets one code per level"
            )
        trie = cls(lengths.pop())
        for item_id, code in codes.items():
            trie.add(item_id, code)
        return trie

    @classmethod
    def from_index(cls, index: Mapping[str, Sequence[str]], tokenizer: Any) -> CodeTrie:
        """Build from an LC-Rec ``index.json`` mapping (item_id -> code token strings) and a tokenizer that has
        the code tokens added (each code string must be exactly one token of the tokenizer's vocabulary)."""
        vocab = tokenizer.get_vocab()
        codes: dict[str, tuple[int, ...]] = {}
        missing: list[str] = []
        for item_id, tokens in index.items():
            if isinstance(tokens, str):
                raise TrieError(
                    f"index entry {item_id!r} is the string {tokens!r}; expected a list of code tokens "
                    'like ["<a_12>", "<b_201>", "<c_7>", "<d_88>"]'
                )
            ids = []
            for tok in tokens:
                tid = vocab.get(tok)
                if tid is None:
                    missing.append(tok)
                    ids.append(-1)
                else:
                    ids.append(int(tid))
            codes[str(item_id)] = tuple(ids)
        if missing:
            uniq = sorted(set(missing))
            raise TrieError(
                f"{len(uniq)} code token(s) of the index are not in the tokenizer's vocabulary "
                f"(e.g. {uniq[:5]}); add the code tokens to the tokenizer (tokenizer.add_tokens) "
                "and resize the model's embeddings before decoding"
            )
        return cls.from_sequences(codes)

    @classmethod
    def from_index_file(cls, path: str | Path, tokenizer: Any) -> CodeTrie:
        """Build from an ``index.json`` file (see :meth:`from_index`)."""
        path = Path(path)
        try:
            index = json.loads(path.read_text())
        except FileNotFoundError:
            raise TrieError(f"index file {path} does not exist; run the quantize step first") from None
        except json.JSONDecodeError as err:
            raise TrieError(f"{path} is not valid JSON ({err})") from None
        return cls.from_index(index, tokenizer)

    def add(self, item_id: str, token_ids: Sequence[int]) -> int:
        """Insert one item; returns its leaf id. Costs ``depth`` table updates (no rebuild).

        Adding an item that is already in the trie with the same code is a no-op; with a different code it is an
        error. Two items may share a code (a collision): the leaf then holds both.
        """
        code = tuple(int(t) for t in token_ids)
        if len(code) != self.depth:
            raise TrieError(
                f"item {item_id!r} has a code of {len(code)} tokens {code}; this trie holds codes of {self.depth}"
            )
        if any(t < 0 for t in code):
            raise TrieError(f"item {item_id!r} has a negative token id in its code {code}")
        item_id = str(item_id)
        if item_id in self._item_leaf:
            leaf = self._item_leaf[item_id]
            if self._leaf_code[leaf] != code:
                raise TrieError(
                    f"item {item_id!r} is already in the trie with code {self._leaf_code[leaf]}, "
                    f"cannot add it again with {code}"
                )
            return leaf
        node = 0
        for d, tok in enumerate(code):
            col = self._column[d].get(tok)
            if col is None:
                col = len(self._level_tokens[d])
                self._column[d][tok] = col
                self._level_tokens[d].append(tok)
            table = self._ensure(d, node, col)
            child = int(table[node, col])
            if child < 0:
                child = self._n_nodes[d + 1]
                self._n_nodes[d + 1] += 1
                table[node, col] = child
                if d + 1 == self.depth:
                    self._leaf_items.append([])
                    self._leaf_code.append(code)
            node = child
        self._leaf_items[node].append(item_id)
        self._item_leaf[item_id] = node
        self.version += 1
        return node

    def copy(self) -> CodeTrie:
        """An independent trie with the same items (tables and leaves copied, tensor cache empty): add to the
        copy while the original keeps serving."""
        other = CodeTrie.__new__(CodeTrie)
        other.depth = self.depth
        other._level_tokens = [list(t) for t in self._level_tokens]
        other._column = [dict(c) for c in self._column]
        other._n_nodes = list(self._n_nodes)
        other._tables = [t.copy() for t in self._tables]
        other._leaf_items = [list(items) for items in self._leaf_items]
        other._leaf_code = list(self._leaf_code)
        other._item_leaf = dict(self._item_leaf)
        other.version = self.version
        other._tensor_cache = {}
        return other

    def _ensure(self, d: int, row: int, col: int) -> np.ndarray:
        """Grow table ``d`` (doubling) so that cell (row, col) exists."""
        table = self._tables[d]
        rows, cols = table.shape
        if row < rows and col < cols:
            return table
        new_rows = max(rows, 1)
        while new_rows <= row:
            new_rows *= 2
        new_cols = max(cols, 1)
        while new_cols <= col:
            new_cols *= 2
        grown = np.full((new_rows, new_cols), -1, dtype=np.int64)
        grown[:rows, :cols] = table
        self._tables[d] = grown
        return grown

    # ------------------------------------------------------------------------------------------- queries
    def __len__(self) -> int:
        """Number of items."""
        return len(self._item_leaf)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._item_leaf

    @property
    def num_leaves(self) -> int:
        """Number of distinct codes (less than ``len(self)`` when items collide)."""
        return self._n_nodes[self.depth]

    def num_nodes(self, d: int) -> int:
        """Nodes at depth ``d`` (depth 0: the root; depth ``self.depth``: leaves)."""
        return self._n_nodes[d]

    def column(self, d: int, token_id: int) -> int:
        """The column of ``token_id`` among depth ``d``'s tokens (the order of :meth:`level_tokens`)."""
        col = self._column[d].get(int(token_id))
        if col is None:
            raise TrieError(f"token id {token_id} is not a depth-{d} token of this trie")
        return col

    def level_tokens(self, d: int) -> list[int]:
        """Token ids that appear at depth ``d`` of some code."""
        return list(self._level_tokens[d])

    def node_of(self, prefix_ids: Sequence[int]) -> int:
        """Node id reached by ``prefix_ids`` (at depth ``len(prefix_ids)``), or -1 if no code starts so."""
        if len(prefix_ids) > self.depth:
            return -1
        node = 0
        for d, tok in enumerate(prefix_ids):
            col = self._column[d].get(int(tok))
            if col is None:
                return -1
            table = self._tables[d]
            if node >= table.shape[0] or col >= table.shape[1]:
                return -1
            node = int(table[node, col])
            if node < 0:
                return -1
        return node

    def allowed(self, prefix_ids: Sequence[int]) -> list[int]:
        """Token ids that may follow ``prefix_ids``; empty for a complete code or a prefix of no item."""
        d = len(prefix_ids)
        if d >= self.depth:
            return []
        node = self.node_of(prefix_ids)
        if node < 0:
            return []
        n_cols = len(self._level_tokens[d])
        row = self._tables[d][node, :n_cols]
        toks = self._level_tokens[d]
        return [toks[c] for c in np.nonzero(row >= 0)[0].tolist()]

    def items(self, code_ids: Sequence[int]) -> tuple[str, ...]:
        """Item(s) whose code is exactly ``code_ids`` (empty if none)."""
        if len(code_ids) != self.depth:
            return ()
        leaf = self.node_of(code_ids)
        return tuple(self._leaf_items[leaf]) if leaf >= 0 else ()

    def leaf_items(self, leaf: int) -> tuple[str, ...]:
        """Item(s) stored at a leaf id (as returned by the decoders)."""
        return tuple(self._leaf_items[leaf])

    def leaf_code(self, leaf: int) -> tuple[int, ...]:
        """The code (token ids) of a leaf."""
        return self._leaf_code[leaf]

    def code_of(self, item_id: str) -> tuple[int, ...]:
        """The code of an item (KeyError if absent)."""
        return self._leaf_code[self._item_leaf[item_id]]

    def iter_codes(self) -> Iterable[tuple[str, tuple[int, ...]]]:
        """(item_id, code) for every item, in insertion order of leaves."""
        for leaf, items in enumerate(self._leaf_items):
            for item in items:
                yield item, self._leaf_code[leaf]

    # ------------------------------------------------------------------------------------------- tensors
    def to_tensors(self, device: str | torch.device = "cpu", vocab_size: int | None = None) -> TrieTensors:
        """The trie as tensors on ``device`` (cached; rebuilt only after :meth:`add` changed the trie).

        ``vocab_size`` adds per-depth token -> column lookup tables (needed to read a beam's node from its
        generated token ids, as the HF logits processor does).
        """
        import torch

        key = (str(torch.device(device)), vocab_size)
        cached = self._tensor_cache.get(key)
        if cached is not None and cached.version == self.version:
            return cached
        level_tokens, children, lookups = [], [], []
        for d in range(self.depth):
            n_cols = len(self._level_tokens[d])
            n_rows = self._n_nodes[d]
            level_tokens.append(torch.tensor(self._level_tokens[d], dtype=torch.long, device=device))
            table = np.full((n_rows, n_cols), -1, dtype=np.int64)
            src = self._tables[d][:n_rows, :n_cols]
            table[: src.shape[0], : src.shape[1]] = src
            children.append(torch.from_numpy(table).to(device))
            if vocab_size is not None:
                biggest = max(self._level_tokens[d])
                if biggest >= vocab_size:
                    raise TrieError(
                        f"code token id {biggest} is outside the model's vocabulary of {vocab_size}; "
                        "resize the model's token embeddings to the tokenizer (model.resize_token_embeddings)"
                    )
                lut = torch.full((vocab_size,), -1, dtype=torch.long)
                lut[torch.tensor(self._level_tokens[d])] = torch.arange(n_cols)
                lookups.append(lut.to(device))
        tensors = TrieTensors(
            depth=self.depth,
            level_tokens=level_tokens,
            children=children,
            token_to_column=lookups if vocab_size is not None else None,
            version=self.version,
        )
        self._tensor_cache = {k: v for k, v in self._tensor_cache.items() if v.version == self.version}
        self._tensor_cache[key] = tensors
        return tensors
