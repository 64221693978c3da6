"""What a user's code is made of: the profile and the training history only, never a valid or test item."""

from __future__ import annotations

import pandas as pd

from lcrec.config import UserIndexConfig
from lcrec.users.user_text import profile_text, training_items, user_texts

ITEMS = pd.DataFrame({"item_id": [f"i{k}" for k in range(8)],
                      "title": ["Alien", "Heat", "Fargo", "Brazil", "Ran", "Jaws", "Big", "Up"]})
SEQS = pd.DataFrame({"user_id": ["1", "2", "3"],
                     "items": [["i0", "i1", "i2", "i3", "i4"], ["i5", "i6", "i7"], ["i1", "i2"]]})
USERS = pd.DataFrame({"user_id": ["1", "2"], "gender": ["F", "M"], "age": [25, None],
                      "occupation": ["writer", ""]})


def test_training_items_leave_out_the_valid_and_test_targets():
    assert training_items(SEQS) == {"1": ["i0", "i1", "i2"], "2": ["i5"], "3": []}


def test_the_text_names_the_profile_and_training_titles_only():
    texts = {t.user_id: t for t in user_texts(UserIndexConfig(), SEQS, ITEMS, USERS)}
    one = texts["1"].text
    assert one == "A user (gender: female, age: 25, occupation: writer). Watched or bought: Alien; Heat; Fargo."
    assert "Brazil" not in one and "Ran" not in one  # i3 is valid, i4 is test
    assert texts["2"].text == "A user (gender: male). Watched or bought: Jaws."  # missing age / occupation skipped
    assert texts["3"].text == ""  # no profile row, no training item: behaviour alone (or nothing) places them
    assert texts["1"].training_items == ("i0", "i1", "i2")


def test_recent_titles_are_capped_and_fields_chosen():
    cfg = UserIndexConfig(history_titles=2, profile_fields=["occupation"])
    one = user_texts(cfg, SEQS, ITEMS, USERS)[0].text
    assert one == "A user (occupation: writer). Watched or bought: Heat; Fargo."


def test_reviews_of_training_interactions_only():
    inter = pd.DataFrame({"user_id": ["1", "1", "1"], "item_id": ["i0", "i2", "i4"],
                          "review": ["scary and great", "", "a test-item review"]})
    text = user_texts(UserIndexConfig(profile_fields=[]), SEQS, ITEMS, None, inter)[0].text
    assert text.endswith("Reviews: scary and great")
    assert "test-item" not in text
    assert "Reviews" not in user_texts(UserIndexConfig(reviews=0), SEQS, ITEMS, None, inter)[0].text


def test_profile_text_skips_empty_values():
    assert profile_text({"gender": "F", "age": float("nan"), "zip": " "}, ["gender", "age", "zip"]) == "gender: female"
