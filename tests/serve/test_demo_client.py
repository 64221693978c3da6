"""The demo's made-up new items: one sequel per history, of its last unused catalogue item, with the genres kept."""

import pandas as pd

from lcrec.serve.demo_client import free_port, sequel_items

ITEMS = pd.DataFrame({"item_id": ["1", "2", "3"], "title": ["Toy Story (1995)", "Heat (1995)", "Se7en (1995)"],
                      "categories": ["Animation, Comedy", "Action, Crime", "Crime, Thriller"]})


def test_sequels_continue_the_last_item_of_each_history():
    new = sequel_items([["2", "1"], ["3", "1"], ["9"]], ITEMS, n=3)
    assert list(new["item_id"]) == ["new-1", "new-2"]  # the third history has no catalogue item
    assert list(new["sequel_of"]) == ["1", "3"]  # "1" is used once; the second history falls back to "3"
    assert new.loc[0, "title"] == "Toy Story: Part 2 (2026)"
    assert new.loc[0, "categories"] == "Animation, Comedy"
    assert new.loc[0, "text"] == "Toy Story: Part 2 (2026). Categories: Animation, Comedy."
    assert len(sequel_items([["1"], ["2"], ["3"]], ITEMS, n=2)) == 2


def test_free_port_is_bindable_on_localhost():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
