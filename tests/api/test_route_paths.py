"""The paths the route tests request: a route whose path parameter no sample row fills is
named, never skipped."""

from __future__ import annotations

import pytest

from api.app import route_specs
from tests.api.route_paths import MissingSample, route_path


def test_a_path_parameter_without_a_sample_names_its_route() -> None:
    spec = next(s for s in route_specs() if s.name == "payment_detail_page")
    with pytest.raises(MissingSample, match=r"payment_detail_page \(/payments/\{id\}\).*'payment'"):
        route_path(spec, {"booking": "7"})
    assert route_path(spec, {"payment": "7"}) == "/payments/7"
