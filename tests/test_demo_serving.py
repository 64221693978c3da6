"""The demo's made-up new items: a re-release of each distinct base item, with title, year, genres and text kept."""

import pandas as pd

from lcrec.demo.serving import edition_items, free_port

ITEMS = pd.DataFrame({"item_id": ["1", "2", "3"], "title": ["Toy Story (1995)", "Heat (1995)", "Se7en (1995)"],
                      "categories": ["Animation, Comedy", "Action, Crime", "Crime, Thriller"]})


def test_one_re_release_per_distinct_known_base():
    new = edition_items([("u1", "1"), ("u2", "1"), ("u3", "9"), ("u4", "3")], ITEMS, n=3)
    assert list(new["item_id"]) == ["new-1", "new-2"]  # "1" once; "9" is not in the catalogue
    assert list(new["edition_of"]) == ["1", "3"] and list(new["for_user"]) == ["u1", "u4"]
    assert new.loc[0, "title"] == "Toy Story (1995)" and new.loc[0, "categories"] == "Animation, Comedy"
    assert new.loc[0, "text"] == "Toy Story (1995). Categories: Animation, Comedy."  # what the ingest composes
    assert len(edition_items([("a", "1"), ("b", "2"), ("c", "3")], ITEMS, n=2)) == 2


def test_free_port_is_bindable_on_localhost():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
