"""The drilldown benchmark's command line: ``--parts`` names what it measures, and a part it
does not know is refused, never skipped silently."""

from __future__ import annotations

import argparse

import pytest

from bench.drilldown_api import PARTS, parts


def test_parts_keep_their_order_and_default_to_all() -> None:
    assert parts("search") == ("search",)
    assert parts("export,pages") == ("export", "pages")
    assert set(PARTS) == {"pages", "search", "export"}


@pytest.mark.parametrize("text", ["serch", "pages,exports", "", ","])
def test_an_unknown_or_empty_part_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="choose from pages, search, export"):
        parts(text)
