import pytest
from movielens_fixture import MOVIES, SEQUENCES

from lcrec.config import NegTasksConfig
from lcrec.tasks.neg import build_neg_tasks


@pytest.mark.parametrize(("per_positive", "expected"), [(0.0, 0), (0.25, 2), (1 / 3, 2), (0.5, 3), (1.0, 6), (3.0, 18),
                                                        (3.5, 21)])
def test_negatives_per_positive_honoured(ctx, per_positive, expected):
    # 6 training prefixes in the fixture and no positive family built: the prefixes are the positives
    assert len(build_neg_tasks(NegTasksConfig(per_positive=per_positive), ctx)) == expected


def test_default_is_three_negatives_per_positive(ctx):
    assert NegTasksConfig().per_positive == 3.0
    assert len(build_neg_tasks(NegTasksConfig(), ctx)) == 3 * 6


def test_sized_from_the_positives_built(ctx):
    ctx.positives = 2  # e.g. two SEQ-all windows: 1:3 gives 6 negatives over the 6 prefixes, one each
    exs = build_neg_tasks(NegTasksConfig(per_positive=3.0), ctx)
    assert len(exs) == 6
    assert len({(e.user_id, e.values["history"]) for e in exs}) == 6


@pytest.mark.parametrize("sampler", ["uniform", "dissimilar"])
def test_negatives_never_in_the_users_items(ctx, sampler):
    exs = build_neg_tasks(NegTasksConfig(per_positive=4.0, sampler=sampler), ctx)
    assert len(exs) == 24
    for ex in exs:
        assert ex.task == "neg.dislike"
        assert ex.target_item not in SEQUENCES[ex.user_id]  # history, target, valid and test items
        assert ex.values["item"] == ctx.code(ex.target_item)
        assert ex.target_item in MOVIES


def test_every_prefix_used_evenly_when_ratio_is_whole(ctx):
    exs = build_neg_tasks(NegTasksConfig(per_positive=2.0), ctx)
    by_prefix = {}
    for ex in exs:
        by_prefix[(ex.user_id, ex.values["history"])] = by_prefix.get((ex.user_id, ex.values["history"]), 0) + 1
    assert sorted(by_prefix.values()) == [2] * 6


def test_dissimilar_sampler_avoids_shared_categories(ctx):
    exs = build_neg_tasks(NegTasksConfig(per_positive=4.0, sampler="dissimilar"), ctx)
    for ex in exs:
        shown = [i for i in ctx.codes if ctx.codes[i] in ex.values["history"].split(", ")]
        cats = {c for i in shown for c in ctx.info(i).categories}
        allowed = [i for i in MOVIES if i not in SEQUENCES[ex.user_id]]
        if any(not cats & set(ctx.info(i).categories) for i in allowed):
            assert not cats & set(ctx.info(ex.target_item).categories), ex


def test_seeded_and_deterministic(ctx):
    a = build_neg_tasks(NegTasksConfig(per_positive=2.0), ctx)
    b = build_neg_tasks(NegTasksConfig(per_positive=2.0), ctx)
    assert a == b
    ctx.seed = 8
    c = build_neg_tasks(NegTasksConfig(per_positive=2.0), ctx)
    assert [e.target_item for e in c] != [e.target_item for e in a]


def test_user_who_touched_everything_gets_no_negative(ctx):
    ctx.known_items["u3"] = set(MOVIES)
    exs = build_neg_tasks(NegTasksConfig(per_positive=1.0), ctx)
    assert len(exs) == 5 and "u3" not in {e.user_id for e in exs}


def test_bad_settings_are_named(ctx):
    with pytest.raises(ValueError, match="tasks.neg.sampler"):
        build_neg_tasks(NegTasksConfig(sampler="popular"), ctx)
    with pytest.raises(ValueError, match="tasks.neg.per_positive"):
        build_neg_tasks(NegTasksConfig(per_positive=-1), ctx)
