from lcrec.tasks.context import ItemInfo, contains_code, leaks


def test_item_info_year_and_categories_from_movielens_row():
    info = ItemInfo.from_row("1", "Toy Story (1995)", "Genres: Animation.", "Animation, Children's, Comedy")
    assert info.year == 1995 and info.categories == ("Animation", "Children's", "Comedy")
    assert ItemInfo.from_row("2", "No Year").year is None


def test_contains_code_matches_whole_codes_only():
    assert contains_code("a <a_1><b_2>, <a_3><b_4>", "<a_1><b_2>")
    assert not contains_code("<a_1><b_2><c_3>", "<a_1><b_2>")  # prefix of a longer code
    assert not contains_code("<z_0><a_1><b_2>", "<a_1><b_2>")  # tail of a longer code
    assert not contains_code("<a_11><b_2>", "<a_1><b_2>")


def test_leaks_titles_case_insensitive():
    assert leaks("I loved HEAT (1995) a lot", ("<a_1>", "Heat (1995)")) == "Heat (1995)"
    assert leaks("nothing here", ("<a_1>", "Heat (1995)")) is None


def test_context_history_rendering_and_guard(ctx):
    from movielens_fixture import code

    assert ctx.code_history(["1", "2"]) == f"{code('1')}, {code('2')}"
    assert ctx.title_history(["6", "1"]) == '"Godfather, The (1972)", "Toy Story (1995)"'
    ctx.max_history = 1
    assert ctx.recent(("1", "2", "9")) == ("9",)
    assert ctx.target_guard("3", ("1",)) == (code("3"), "Heat (1995)")
    assert ctx.target_guard("3", ("3",)) == ()  # a repeat: the target is legitimately in the history
