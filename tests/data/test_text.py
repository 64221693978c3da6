from lcrec.data.text import clean_text, clip_title, compose_item_text, join_categories, limit_description


def test_clean_text_decodes_entities_and_drops_tags():
    assert clean_text("Rock &amp; Roll <b>Guitar</b>\n\n  Strings&nbsp;x") == "Rock & Roll Guitar Strings x"


def test_clean_text_handles_lists_none_nan():
    assert clean_text(["a", " b ", None]) == "a b"
    assert clean_text(None) == "" and clean_text(float("nan")) == ""


def test_long_description_blanked_like_reference():
    assert limit_description("x" * 2000, 2000) == ""
    assert limit_description("x" * 1999, 2000) == "x" * 1999
    assert limit_description("x" * 5000, 0) == "x" * 5000


def test_clip_title_at_word_boundary():
    assert clip_title("one two three", 9) == "one two"


def test_categories_dedup_and_text():
    cats = join_categories(["Music", "Guitars", "Music", ""])
    assert cats == "Music, Guitars"
    assert compose_item_text("Strat", "A guitar.", cats, "Fender") == "Strat. Brand: Fender. Categories: Music, Guitars. A guitar."
