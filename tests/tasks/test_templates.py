import pytest

from lcrec.tasks.templates import (
    POOLS,
    PROMPT_HEADER,
    next_item_prompt,
    next_item_template,
    pool,
    render_prompt,
)

KNOWN_FIELDS = {"history", "item", "title", "description", "query", "preference", "candidates", "letter", "user", "choosers",
                "rated", "rating"}
CODE_ANSWER_TASKS = {"seq", "mut.item2index", "asy.title2index", "ite.query2index", "ite.history_query2index",
                     "neg.dislike"}


def test_pool_sizes_main_tasks_have_at_least_ten():
    for task in ("seq", "mut.item2index", "mut.index2item"):
        assert len(pool(task)) >= 10, task
    for task, templates in POOLS.items():
        assert len(templates) >= 6, task


def test_template_ids_unique_and_fields_known():
    ids = [t.id for ts in POOLS.values() for t in ts]
    assert len(ids) == len(set(ids))
    for task, templates in POOLS.items():
        for t in templates:
            assert t.id.startswith(task + "/")
            assert t.fields <= KNOWN_FIELDS, t.id
            wordings = [x.instruction for x in templates]
            assert len(set(wordings)) == len(wordings), task


def test_code_tasks_answer_with_the_code_only_and_never_show_it():
    for task in CODE_ANSWER_TASKS:
        for t in pool(task):
            assert t.response == "{item}", t.id
            assert "{item}" not in t.instruction, t.id


def test_history_tasks_show_history_and_text_tasks_hide_the_answer():
    for task in ("seq", "asy.index2title", "asy.index2desc", "asy.title2index", "ite.history_query2index",
                 "per.preference", "neg.dislike"):
        assert all("{history}" in t.instruction for t in pool(task)), task
    for t in pool("mut.index2item"):
        assert "{title}" not in t.instruction and "{title}" in t.response
    for t in pool("asy.index2title"):
        assert "{title}" not in t.instruction and "{item}" not in t.instruction


def test_render_prompt_alpaca_frame():
    assert render_prompt("Do X.") == f"{PROMPT_HEADER}\n\n### Instruction:\nDo X.\n\n### Response:"


def test_fits_requires_non_empty_fields():
    title_only = next(t for t in pool("mut.index2item") if t.fields == {"item", "title"})
    both = next(t for t in pool("mut.index2item") if "description" in t.fields)
    values = {"item": "<a_1>", "title": "Heat (1995)", "description": ""}
    assert title_only.fits(values) and not both.fits(values)
    ins, res = title_only.fill(values)
    assert "<a_1>" in ins and res == '"Heat (1995)"'


def test_next_item_template_ids_and_errors():
    assert next_item_template("seq/3") is pool("seq")[3]
    assert next_item_template(3) is pool("seq")[3] and next_item_template("3") is pool("seq")[3]
    assert next_item_template("seqall/1") is pool("seqall")[1]
    for bad in ("mut.item2index/0", "seq/99", "seqall", "x"):
        with pytest.raises(ValueError, match="not a next-item template; choose one of seq/0..seq/11"):
            next_item_template(bad)


def test_scoring_pair_moves_the_response_lead_into_the_prompt():
    values = {"history": "<a_1><b_2>, <a_3><b_4>", "item": "<a_5><b_6>"}
    seq = pool("seq")[0]
    assert seq.scoring_pair(values) == (render_prompt(seq.fill(values)[0]), "<a_5><b_6>")
    seqall = pool("seqall")[0]
    prompt, answer = seqall.scoring_pair(values)
    assert prompt == render_prompt(seqall.instruction) + "<a_1><b_2>, <a_3><b_4>, " and answer == "<a_5><b_6>"
    assert next_item_prompt("<a_1><b_2>, <a_3><b_4>", "seqall/0") == prompt
    assert next_item_prompt("<a_1><b_2>", 0) == render_prompt(seq.fill({"history": "<a_1><b_2>", "item": "x"})[0])
    with pytest.raises(ValueError, match="no {item} in its response"):
        pool("mut.index2item")[0].scoring_pair({"item": "<a_1>", "title": "T", "description": "D"})
    with pytest.raises(KeyError, match="needs field"):
        seqall.scoring_prompt({"history": ""})


def test_seqall_templates_name_no_item_in_the_instruction():
    for t in pool("seqall"):
        assert t.response == "{history}, {item}" and t.instruction.format() == t.instruction, t.id
