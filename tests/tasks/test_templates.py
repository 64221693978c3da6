from lcrec.tasks.templates import POOLS, PROMPT_HEADER, pool, render_prompt

KNOWN_FIELDS = {"history", "item", "title", "description", "query", "preference"}
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
