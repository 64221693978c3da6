"""CodeTrie: exact allowed sets, item lookup, incremental add, tensors, and errors a user can act on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_lm import CODEBOOK, LEVELS, code_token, random_index

from lcrec.decode.trie import CodeTrie, TrieError


def _codes(n, depth, base, seed):
    """n items with distinct random codes; depth d uses token ids base + 10 d + (0..4)."""
    rng = np.random.default_rng(seed)
    out, seen = {}, set()
    while len(out) < n:
        code = tuple(int(x) for x in base + rng.integers(0, 5, size=depth) + 10 * np.arange(depth))
        if code not in seen:
            seen.add(code)
            out[f"i{len(out)}"] = code
    return out


def test_allowed_is_exactly_the_set_of_next_tokens():
    codes = _codes(40, 3, 100, seed=1)
    trie = CodeTrie.from_sequences(codes)
    for d in range(3):
        prefixes = {c[:d] for c in codes.values()}
        for prefix in prefixes:
            expected = {c[d] for c in codes.values() if c[:d] == prefix}
            assert set(trie.allowed(prefix)) == expected
            assert len(trie.allowed(prefix)) == len(expected)  # no duplicates
    some = next(iter(codes.values()))
    assert trie.allowed(some) == []  # a complete code allows nothing more
    assert trie.allowed((999,)) == []  # a prefix of no item
    assert trie.node_of((999,)) == -1


def test_item_lookup_and_collisions():
    trie = CodeTrie.from_sequences({"a": (1, 2), "b": (1, 3), "c": (1, 2)})
    assert trie.items((1, 2)) == ("a", "c")  # two items share a code: the leaf holds both
    assert trie.items((1, 3)) == ("b",)
    assert trie.items((1, 4)) == ()
    assert trie.items((1,)) == ()
    assert len(trie) == 3 and trie.num_leaves == 2
    assert trie.code_of("b") == (1, 3)


def test_from_index_uses_the_tokenizer_ids(tokenizer):
    index = random_index(30)
    trie = CodeTrie.from_index(index, tokenizer)
    vocab = tokenizer.get_vocab()
    for item, toks in index.items():
        ids = tuple(vocab[t] for t in toks)
        assert trie.items(ids) == (item,)
        assert tokenizer.convert_ids_to_tokens(list(ids)) == toks


def test_from_index_errors_name_the_problem(tokenizer):
    with pytest.raises(TrieError, match="not in the tokenizer's vocabulary"):
        CodeTrie.from_index({"1": ["<a_0>", "<z_9>", "<c_0>"]}, tokenizer)
    with pytest.raises(TrieError, match="same length"):
        CodeTrie.from_index({"1": ["<a_0>", "<b_0>", "<c_0>"], "2": ["<a_0>", "<b_1>"]}, tokenizer)
    with pytest.raises(TrieError, match="empty index"):
        CodeTrie.from_sequences({})
    trie = CodeTrie.from_sequences({"a": (1, 2)})
    with pytest.raises(TrieError, match="already in the trie"):
        trie.add("a", (1, 3))
    assert trie.add("a", (1, 2)) == trie.add("a", (1, 2))  # same code again: no-op


def test_incremental_add_grows_tables_and_matches_a_fresh_build():
    codes = _codes(200, 4, 0, seed=2)
    items = list(codes.items())
    trie = CodeTrie.from_sequences(dict(items[:3]))
    before = trie.to_tensors("cpu")
    for item, code in items[3:]:
        trie.add(item, code)
    fresh = CodeTrie.from_sequences(codes)
    after = trie.to_tensors("cpu")
    assert after is not before and after.version == trie.version
    assert trie.to_tensors("cpu") is after  # cached until the next change
    for d in range(4):
        assert trie.level_tokens(d) == fresh.level_tokens(d)
        assert after.children[d].tolist() == fresh.to_tensors("cpu").children[d].tolist()
    for item, code in codes.items():
        assert trie.items(code) == (item,)


def test_copy_takes_new_items_while_the_original_stays_as_it_was():
    codes = _codes(120, 3, 0, seed=5)
    items = list(codes.items())
    original = CodeTrie.from_sequences(dict(items[:60]))
    served = original.to_tensors("cpu")
    before = {d: served.children[d].tolist() for d in range(3)}
    copy = original.copy()
    for item, code in items[60:]:
        copy.add(item, code)
    assert len(original) == 60 and len(copy) == 120
    assert all(item not in original for item, _ in items[60:])
    assert original.to_tensors("cpu") is served  # the original's tables and tensors untouched
    assert {d: served.children[d].tolist() for d in range(3)} == before
    fresh = CodeTrie.from_sequences(codes)
    for d in range(3):
        assert copy.to_tensors("cpu").children[d].tolist() == fresh.to_tensors("cpu").children[d].tolist()
    for item, code in codes.items():
        assert copy.items(code) == (item,) and copy.code_of(item) == code


def test_tensor_tables_agree_with_allowed():
    codes = _codes(60, 3, 50, seed=3)
    trie = CodeTrie.from_sequences(codes)
    tt = trie.to_tensors("cpu", vocab_size=200)
    for code in codes.values():
        node = 0
        for d in range(3):
            row = tt.children[d][node]
            allowed = tt.level_tokens[d][row >= 0].tolist()
            assert sorted(allowed) == sorted(trie.allowed(code[:d]))
            col = int(tt.token_to_column[d][code[d]])
            node = int(row[col])
        assert trie.leaf_items(node) == trie.items(code)
    with pytest.raises(TrieError, match="outside the model's vocabulary"):
        trie.to_tensors("cpu", vocab_size=60)


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abcdefgh0123456789", min_size=1, max_size=6),
        st.tuples(*[st.integers(0, 7) for _ in range(3)]),
        min_size=1,
        max_size=60,
    )
)
def test_property_every_complete_path_of_the_trie_is_an_item(codes):
    trie = CodeTrie.from_sequences(codes)
    # walk every path the trie allows: each complete one must be exactly the codes given
    paths = [()]
    for _ in range(3):
        paths = [p + (t,) for p in paths for t in trie.allowed(p)]
    assert set(paths) == set(codes.values())
    for path in paths:
        assert set(trie.items(path)) == {i for i, c in codes.items() if c == path}


def test_level_tokens_follow_the_lcrec_letters(tokenizer):
    index = {str(i): [code_token(lvl, (i + lvl) % CODEBOOK) for lvl in range(LEVELS)] for i in range(CODEBOOK)}
    trie = CodeTrie.from_index(index, tokenizer)
    for lvl in range(LEVELS):
        toks = tokenizer.convert_ids_to_tokens(trie.level_tokens(lvl))
        assert all(t.startswith(f"<{chr(ord('a') + lvl)}_") for t in toks)
    assert len(list(itertools.islice(trie.iter_codes(), 100))) == CODEBOOK
