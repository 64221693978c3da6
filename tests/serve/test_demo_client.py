"""The demo's made-up new items: a special edition of each distinct base item, with title, year and genres kept."""

import pandas as pd

from lcrec.serve.demo_client import edition_items, free_port

ITEMS = pd.DataFrame({"item_id": ["1", "2", "3"], "title": ["Toy Story (1995)", "Heat (1995)", "Se7en (1995)"],
                      "categories": ["Animation, Comedy", "Action, Crime", "Crime, Thriller"]})


def test_one_edition_per_distinct_known_base():
    new = edition_items(["1", "1", "9", "3"], ITEMS, n=3)
    assert list(new["item_id"]) == ["new-1", "new-2"]  # "1" once; "9" is not in the catalogue
    assert list(new["edition_of"]) == ["1", "3"]
    assert new.loc[0, "title"] == "Toy Story (1995) [Special Edition]"
    assert new.loc[0, "categories"] == "Animation, Comedy"
    assert new.loc[0, "text"] == "Toy Story (1995) [Special Edition]. Categories: Animation, Comedy."
    assert len(edition_items(["1", "2", "3"], ITEMS, n=2)) == 2


def test_free_port_is_bindable_on_localhost():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
