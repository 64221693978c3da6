"""The serving core on the tiny serving folder: prompts, widths, and one ranking for every driver."""

from pathlib import Path

import pytest

from lcrec.config import ServeConfig


@pytest.fixture(scope="module")
def core(tiny_serving):
    from lcrec.serve import index_store
    from lcrec.serve.recommend import load_serving

    folder = Path(tiny_serving["folder"])
    cfg = ServeConfig(max_history=4, template="auto", device="cpu")
    served, state = load_serving(folder, index_store.current_dir(folder / "index"), cfg)
    return served, state, tiny_serving["item_ids"]


def test_load_serving_applies_the_serve_section(core):
    served, state, items = core
    assert served.max_history == 4
    assert len(state.codes) == len(items) and all(i in state for i in items)


def test_history_prompt_shows_the_last_indexed_items(core):
    from lcrec.features.frames import history_hash
    from lcrec.serve.recommend import history_prompt

    served, state, items = core
    p = history_prompt(served, state, [items[0], "not-an-item", *items[1:6]])
    assert p.shown == tuple(items[2:6])  # unknown item dropped, then the last max_history=4
    assert p.history_hash == history_hash(list(items[2:6]))
    assert p.prompt_ids == served.prompt_ids([state.codes[i] for i in items[2:6]])
    assert history_prompt(served, state, ["not-an-item"]) is None


def test_search_width_makes_room_for_exclusions(core):
    from lcrec.serve.recommend import search_width

    _, state, items = core
    assert search_width(5, [], state, 20) == 20
    assert search_width(18, items[:4] + ["unknown"], state, 20) == 22  # only indexed exclusions count
    assert search_width(18, items[:4], state, 20, max_beam=21) == 21


def test_rank_histories_equals_ranking_the_prompts_and_leaves_out_the_history(core):
    from lcrec.serve.recommend import history_prompt, rank_histories, rank_prompts, ranked_pairs, top_items

    served, state, items = core
    histories = [items[:3], items[5:9], ["unknown"]]
    out = rank_histories(served, state, histories, k=6, beam_width=10, exclude_history=True)
    assert out[2] is None
    for h, r in zip(histories[:2], out[:2], strict=True):
        assert len(r.items) == 6 and not set(r.items) & set(h)
        assert [s for _, s in r.items] == sorted((s for _, s in r.items), reverse=True)
        # the predictor's path: the same prompt ranked alone, the shown items dropped
        p = history_prompt(served, state, h)
        alone = rank_prompts(served.model, state.trie, [p.prompt_ids], 10 + 4, 10 + 4)
        assert [i for i, _ in top_items(ranked_pairs(alone.recommendations[0]), set(p.shown), 6)] == \
            [i for i, _ in r.items]
    kept = rank_histories(served, state, histories[:1], k=6, beam_width=10, exclude_history=False)
    assert len(kept[0].items) == 6
