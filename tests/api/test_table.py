"""The route table and the path list are one: every path has exactly one route, in order."""

from __future__ import annotations

from aiokes.api.paths import ROUTE_PATHS
from aiokes.api.table import default_routes
from aiokes.config import ROUTE_PATHS as CONFIGURABLE_PATHS


def test_every_path_has_one_route_in_the_listed_order() -> None:
    assert tuple(route.path for route in default_routes().routes) == ROUTE_PATHS


def test_the_config_accepts_exactly_the_served_paths() -> None:
    assert CONFIGURABLE_PATHS is ROUTE_PATHS


def test_only_the_hot_routes_answer_without_waiting() -> None:
    immediate = {route.path for route in default_routes().routes if route.immediate}
    assert immediate == {"/v1/key/generate/", "/v1/key/encrypt/", "/v1/key/decrypt/"}
