"""The slowly changing dimensions: locations, staff, resources, customers.

A :class:`World` is derived from the seed and scale alone, so the backfill and the live
stream agree on which resource belongs to which location and what each one costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulator import vocabulary
from simulator.columns import (
    Floats,
    Ints,
    as_text,
    digits,
    join,
    pick,
    text_from,
    timestamps,
)

# Minor units per "dollar-like" price point, per currency.
CURRENCY_FACTOR = {"USD": 1.0, "EUR": 0.92, "GBP": 0.8, "NGN": 1500.0}


@dataclass(frozen=True)
class World:
    scale: vocabulary.Scale
    location_currency: tuple[str, ...]  # by location index (id - 1)
    staff_location: Ints  # by staff index
    resource_location: Ints  # location index of each resource
    resource_staff: Ints  # staff index of each resource, -1 when none
    resource_price: Ints  # base price of one hour, in the location's minor units
    resource_popularity: Floats  # share of bookings each resource gets

    @property
    def customers(self) -> int:
        return self.scale.customers


def build_world(scale: vocabulary.Scale, seed: int) -> World:
    rng = np.random.default_rng([seed, 1])
    currencies = [row[0] for row in vocabulary.CURRENCIES]
    location_currency = tuple(
        currencies[i] for i in pick(rng, [row[1] for row in vocabulary.CURRENCIES], scale.locations)
    )
    staff_location = rng.integers(0, scale.locations, scale.staff)
    resource_location = rng.integers(0, scale.locations, scale.resources)
    resource_staff = np.full(scale.resources, -1, dtype=np.int64)
    for location in range(scale.locations):
        staff_here = np.flatnonzero(staff_location == location)
        resources_here = np.flatnonzero(resource_location == location)
        if len(staff_here):
            resource_staff[resources_here] = rng.choice(staff_here, len(resources_here))
    factors = np.asarray([CURRENCY_FACTOR[location_currency[i]] for i in resource_location])
    base = rng.integers(25, 150, scale.resources) * 100
    popularity = rng.lognormal(0.0, 0.8, scale.resources)
    return World(
        scale=scale,
        location_currency=location_currency,
        staff_location=staff_location,
        resource_location=resource_location,
        resource_staff=resource_staff,
        resource_price=(base * factors).astype(np.int64),
        resource_popularity=popularity / popularity.sum(),
    )


def location_names(count: int) -> list[str]:
    cities = vocabulary.CITIES
    return [
        cities[i % len(cities)] + ("" if i < len(cities) else f" {i // len(cities) + 1}")
        for i in range(count)
    ]


def locations_table(world: World, at_us: int) -> pa.Table:
    count = world.scale.locations
    return pa.table(
        {
            "id": pa.array(np.arange(1, count + 1)),
            "name": pa.array(location_names(count)),
            "timezone": pa.array(["UTC"] * count),
            "updated_at": timestamps(np.full(count, at_us)),
        }
    )


def staff_table(world: World, seed: int, at_us: int) -> pa.Table:
    rng = np.random.default_rng([seed, 2])
    count = world.scale.staff
    first = text_from(vocabulary.FIRST_NAMES, rng.integers(0, len(vocabulary.FIRST_NAMES), count))
    last = text_from(vocabulary.LAST_NAMES, rng.integers(0, len(vocabulary.LAST_NAMES), count))
    return pa.table(
        {
            "id": pa.array(np.arange(1, count + 1)),
            "name": join(first, " ", last),
            "location_id": pa.array(world.staff_location + 1),
            "updated_at": timestamps(np.full(count, at_us)),
        }
    )


def resources_table(world: World, at_us: int) -> pa.Table:
    count = world.scale.resources
    index = np.arange(count)
    kinds = text_from(vocabulary.RESOURCE_KINDS, index % len(vocabulary.RESOURCE_KINDS))
    staff = world.resource_staff
    return pa.table(
        {
            "id": pa.array(index + 1),
            "name": join(kinds, " ", as_text(index // len(vocabulary.RESOURCE_KINDS) + 1)),
            "location_id": pa.array(world.resource_location + 1),
            "staff_id": pa.array(staff + 1, mask=staff < 0),
            "updated_at": timestamps(np.full(count, at_us)),
        }
    )


def customers_table(world: World, seed: int, start_us: int) -> pa.Table:
    rng = np.random.default_rng([seed, 3])
    count = world.customers
    ids = np.arange(1, count + 1)
    first = text_from(vocabulary.FIRST_NAMES, rng.integers(0, len(vocabulary.FIRST_NAMES), count))
    last = text_from(vocabulary.LAST_NAMES, rng.integers(0, len(vocabulary.LAST_NAMES), count))
    year_us = 365 * 86_400 * 1_000_000
    created = np.sort(start_us - rng.integers(0, 2 * year_us, count))
    no_phone = rng.random(count) < 0.2
    return pa.table(
        {
            "id": pa.array(ids),
            "name": join(first, " ", last),
            "email": join(first, ".", last, as_text(ids), "@example.com"),
            "phone": pc.if_else(
                pa.array(no_phone),
                pa.scalar(None, pa.string()),
                join("+1555", digits(rng, count, 7)),
            ),
            "created_at": timestamps(created),
            "updated_at": timestamps(created),
        }
    )
