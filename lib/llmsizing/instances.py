"""Cloud GPU instances: the catalog loader and the choice of instance for a GPU count.

One YAML file per instance under ``catalog/instances/`` (and ``$LLMSIZING_CATALOG_DIR/instances``),
keys as in ``catalog.INSTANCE_KEYS``, checked strictly like the other catalogs. Units are
converted once here: ``ram_GiB`` → bytes (2^30), ``local_nvme_GB`` → bytes (10^9),
``network_Gbps`` → bytes/s (10^9 / 8). A price is per instance-hour for one region and date, in
``currency`` (USD or CNY; CNY converted once with the dated rate in ``catalog/exchange_rates.yaml``), bought
as ``price_kind`` (on-demand, committed-1y/3y, spot, capacity-block). ``price: null`` rows (no public
price) describe the hardware but are never priced. Plans use on-demand prices unless asked otherwise.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from llmsizing import catalog
from llmsizing.choices import CONFIDENCE_LEVELS, CURRENCIES, PRICE_KINDS, RDMA_KINDS
from llmsizing.errors import CatalogError
from llmsizing.units import GB, GiB

BITS_PER_BYTE = 8
#: the price kind plans use unless the caller asks for others
DEFAULT_PRICE_KINDS = ("on-demand",)
#: tolerance when checking price_usd_per_hour against price / rate (the files round to 4 decimals)
USD_ROUNDING = 1e-4
EXCHANGE_RATE_KEYS = {"currency", "per_usd", "date", "kind", "sources", "confidence", "notes"}


@dataclass(frozen=True)
class InstanceSpec:
    """A cloud instance type (one node) in base units."""

    slug: str
    provider: str
    name: str
    gpu: str                      # GPU catalog slug
    gpus: int
    vcpus: int
    ram_bytes: int
    local_nvme_bytes: int
    network_bytes_per_s: float | None    # total per instance; None: the provider does not publish it
    network_gbps: float | None
    rdma: str                     # none | efa | infiniband | roce | gpudirect-tcpx...
    gpu_interconnect: str
    price_usd_per_hour: float | None
    price_region: str
    price_date: str
    sources: tuple[str, ...] = field(default=(), compare=False)
    notes: str = ""
    price_kind: str = "on-demand"
    currency: str = "USD"
    price: float | None = None    # in ``currency`` per instance-hour
    confidence: str = "low"

    @property
    def priced(self) -> bool:
        """Whether a public price was found (``price_usd_per_hour`` is not null)."""
        return self.price_usd_per_hour is not None

    @property
    def has_rdma(self) -> bool:
        """Whether the instance's network offers RDMA-class transport (GPUDirect over IB, EFA, RoCE, TCPX)."""
        return self.rdma != "none"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = list(self.sources)
        return d


def _int_field(data: dict, key: str, where: str, minimum: int = 0) -> int:
    v = data.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise CatalogError(f"{where}: key '{key}' must be an integer >= {minimum}, got {v!r}")
    return v


@lru_cache(maxsize=1)
def exchange_rates() -> dict[str, dict]:
    """Dated exchange rates by currency (``catalog/exchange_rates.yaml``): {currency: {per_usd, date, ...}}.
    USD is 1 by definition."""
    path = catalog.CATALOG_DIR / "exchange_rates.yaml"
    data = catalog.read_yaml_file(path)
    rates: dict[str, dict] = {"USD": {"currency": "USD", "per_usd": 1.0, "date": "", "sources": ()}}
    if not isinstance(data, dict) or not isinstance(data.get("rates"), list):
        raise CatalogError(f"{path}: expected a key 'rates' with a list of rates")
    for i, r in enumerate(data["rates"]):
        where = f"{path}: rates[{i}]"
        catalog._check_keys(r, EXCHANGE_RATE_KEYS, where)
        if r["currency"] not in CURRENCIES:
            raise CatalogError(f"{where}: key 'currency' must be one of {', '.join(CURRENCIES)}, got {r['currency']!r}")
        d = r["date"].isoformat() if isinstance(r["date"], _dt.date) else str(r["date"])
        rates[r["currency"]] = {"currency": r["currency"], "per_usd": float(catalog._num(r, "per_usd", where)),
                                "date": d, "sources": catalog._str_list(r, "sources", where)}
    return rates


def _choice(data: dict, key: str, choices: tuple, where: str) -> str:
    v = data[key]
    if v not in choices:
        raise CatalogError(f"{where}: key '{key}' must be one of {', '.join(choices)}, got {v!r}")
    return v


def _prices(data: dict, where: str) -> tuple[float | None, float | None, str, str]:
    """(price in its currency, USD per hour, price_kind, currency), checked: USD rows have price ==
    price_usd_per_hour; other currencies price / per_usd (rounded to 4 decimals); both null or neither."""
    kind = _choice(data, "price_kind", PRICE_KINDS, where)
    currency = _choice(data, "currency", CURRENCIES, where)
    price = catalog._num(data, "price", where, allow_null=True)
    usd = catalog._num(data, "price_usd_per_hour", where, allow_null=True)
    if (price is None) != (usd is None):
        raise CatalogError(f"{where}: keys 'price' and 'price_usd_per_hour' must both be null or both be numbers")
    if price is not None:
        rate = exchange_rates().get(currency)
        if rate is None:
            raise CatalogError(f"{where}: no exchange rate for {currency} in exchange_rates.yaml")
        expected = price / rate["per_usd"]
        if abs(expected - usd) > max(USD_ROUNDING, 1e-6 * expected):
            raise CatalogError(f"{where}: key 'price_usd_per_hour' is {usd!r}, but price {price!r} {currency} at "
                               f"{rate['per_usd']} per USD is {expected:.4f}")
    return (None if price is None else float(price)), (None if usd is None else float(usd)), kind, currency


def _instance(path, data: dict) -> InstanceSpec:
    where = str(path)
    catalog._check_keys(data, catalog.INSTANCE_KEYS, where)
    gpu_name = data["gpu"]
    if not isinstance(gpu_name, str):
        raise CatalogError(f"{where}: key 'gpu' must be a GPU catalog slug, got {gpu_name!r}")
    try:
        gpu = catalog.load_gpu(gpu_name)
    except CatalogError as exc:
        raise CatalogError(f"{where}: key 'gpu': {exc}") from None
    rdma = str(data["rdma"]).strip().lower()
    if rdma not in RDMA_KINDS:
        raise CatalogError(f"{where}: key 'rdma' must be one of {', '.join(RDMA_KINDS)}, got {data['rdma']!r}")
    price_native, price, price_kind, currency = _prices(data, where)
    confidence = _choice(data, "confidence", CONFIDENCE_LEVELS, where)
    net = catalog._num(data, "network_Gbps", where, allow_null=True)  # null: not published
    nvme = catalog._num(data, "local_nvme_GB", where, positive=False)
    date = data["price_date"]
    if isinstance(date, _dt.date):
        date = date.isoformat()
    for key in ("provider", "name", "price_region", "gpu_interconnect"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise CatalogError(f"{where}: key '{key}' must be a non-empty string")
    return InstanceSpec(
        slug=data["slug"], provider=data["provider"], name=data["name"], gpu=gpu.slug,
        gpus=_int_field(data, "gpus", where, 1), vcpus=_int_field(data, "vcpus", where, 1),
        ram_bytes=int(float(catalog._num(data, "ram_GiB", where)) * GiB),
        local_nvme_bytes=int(float(nvme) * GB),
        network_bytes_per_s=None if net is None else float(net) * GB / BITS_PER_BYTE,
        network_gbps=None if net is None else float(net), rdma=rdma,
        gpu_interconnect=data["gpu_interconnect"], price_usd_per_hour=None if price is None else float(price),
        price_region=data["price_region"], price_date=str(date),
        sources=catalog._str_list(data, "sources", where), notes=str(data.get("notes") or ""),
        price_kind=price_kind, currency=currency, price=price_native, confidence=confidence,
    )


@lru_cache(maxsize=1)
def instance_catalog() -> dict[str, InstanceSpec]:
    """Every catalog instance by slug (read once; no I/O afterwards)."""
    return {slug: _instance(path, data) for slug, (path, data) in catalog._load_entries("instances").items()}


def list_instances() -> list[InstanceSpec]:
    """All instances, sorted by slug."""
    return [i for _, i in sorted(instance_catalog().items())]


def load_instance(name: str) -> InstanceSpec:
    """An instance by slug (``aws-p5.48xlarge``) or by provider name (``p5.48xlarge``)."""
    cat = instance_catalog()
    key = str(name).strip().lower()
    if key in cat:
        return cat[key]
    for inst in cat.values():
        if inst.name.lower() == key:
            return inst
    raise CatalogError(f"unknown instance '{name}'{catalog._suggest(key, sorted(cat))}")


@lru_cache(maxsize=256)
def instances_for_gpu(gpu_slug: str, price_kinds: tuple[str, ...] = DEFAULT_PRICE_KINDS) -> tuple[InstanceSpec, ...]:
    """Instances carrying ``gpu_slug`` sold as one of ``price_kinds`` (default on-demand), largest nodes
    first, then fastest network, then cheapest (unpriced last)."""
    slug = catalog.load_gpu(gpu_slug).slug
    found = [i for i in instance_catalog().values() if i.gpu == slug and i.price_kind in price_kinds]
    return tuple(sorted(found, key=lambda i: (-i.gpus, -(i.network_gbps or 0.0), _price_key(i), i.slug)))


def unpriced_instances_for_gpu(gpu_slug: str) -> tuple[InstanceSpec, ...]:
    """Instances carrying ``gpu_slug`` with no public price (listed, never used for cost ranking)."""
    slug = catalog.load_gpu(gpu_slug).slug
    return tuple(sorted((i for i in instance_catalog().values() if i.gpu == slug and not i.priced),
                        key=lambda i: i.slug))


def _price_key(inst: InstanceSpec) -> float:
    return inst.price_usd_per_hour if inst.price_usd_per_hour is not None else math.inf


def nodes_needed(gpus: int, gpus_per_node: int) -> int:
    """Nodes to hold ``gpus`` GPUs: ceil(gpus / gpus_per_node)."""
    return max(1, math.ceil(gpus / gpus_per_node))


def cheapest_instance(gpu_slug: str, gpus: int, *, min_ram_bytes: float = 0.0,
                      min_network_gbps: float = 0.0, need_rdma: bool = False) -> InstanceSpec | None:
    """Cheapest way to rent ``gpus`` GPUs of one type: minimise nodes × price among fitting instances.

    A fitting instance has at least ``min_ram_bytes`` of RAM and ``min_network_gbps`` per node
    (and RDMA when asked). Multi-node answers need an instance with RDMA when ``need_rdma``.
    Instances without a price sort last; None when no instance carries the GPU or none fits.
    """
    best: tuple[float, int, str] | None = None
    choice = None
    for inst in instances_for_gpu(gpu_slug):
        if inst.ram_bytes < min_ram_bytes or (inst.network_gbps or 0.0) < min_network_gbps:
            continue
        n = nodes_needed(gpus, inst.gpus)
        if need_rdma and n > 1 and not inst.has_rdma:
            continue
        cost = n * _price_key(inst)
        key = (cost, n, inst.slug)
        if best is None or key < best:
            best, choice = key, inst
    return choice
