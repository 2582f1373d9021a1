"""Deterministic generator of realistic Amazon products and categories with the Kaggle schema.

    python dataset/generate.py --products 100000 --seed 7 --out var/generated
    python dataset/generate.py --products 2000 --categories 60 --updates 600 --days 5   # the committed sample

writes amazon_products.csv and amazon_categories.csv, and with `--updates N` a price history beside them:
`updates/day_01.csv` ... `day_<D>.csv`, one file per simulated day, with amazon_products.csv's header and
format (`python client/api_client.py --products <out>/updates/day_01.csv` sends one unchanged). Together
the days hold N new versions of existing products (whole rows, same asin): most prices move a few percent
up or down, some products go on sale at 20-40 % off with the list price kept as the reference (and come
off it on a later day), a few best-seller flags flip, and boughtInLastMonth drifts; some products are
re-priced on several days, each version building on the one before. The same seed always gives the same
bytes. Product rows stream to disk, so any size fits in memory (the N versions are held in memory).
Titles carry the real file's quirks (commas, quotes, unicode).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakehouse.schemas import CATEGORY_FIELDS, PRODUCT_FIELDS

ASIN_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ASIN_SUFFIX_SPACE = 36**8
# Multiplying by a number coprime with 36**8 permutes the suffix space: unique asins without a set.
ASIN_STRIDE = 2_654_435_761


@dataclass(frozen=True)
class CategoryProfile:
    name: str
    median_price: float
    nouns: tuple[str, ...]


CATEGORY_PROFILES: tuple[CategoryProfile, ...] = (
    CategoryProfile("Suitcases", 120.0, ("Spinner Suitcase", "Carry-On Luggage", "Hardside Luggage Set")),
    CategoryProfile("Backpacks", 35.0, ("Laptop Backpack", "Hiking Daypack", "School Backpack")),
    CategoryProfile("Men's Shoes", 60.0, ("Running Shoe", "Leather Loafer", "Trail Sneaker")),
    CategoryProfile("Women's Handbags", 45.0, ("Crossbody Bag", "Tote Bag", "Shoulder Purse")),
    CategoryProfile("Kitchen & Dining", 25.0, ("Chef's Knife", "Non-Stick Frying Pan", "Mixing Bowl Set")),
    CategoryProfile("Coffee, Tea & Espresso", 70.0, ("Espresso Machine", "Pour-Over Kettle", "Coffee Grinder")),
    CategoryProfile("Computer Monitors", 220.0, ("27-Inch Monitor", "Curved Gaming Monitor", "4K Display")),
    CategoryProfile("Headphones & Earbuds", 55.0, ("Wireless Earbuds", "Over-Ear Headphones", "Sport Earphones")),
    CategoryProfile("Toys & Games", 22.0, ("Building Blocks Set", "Board Game", "Plush Toy")),
    CategoryProfile("Sports & Fitness", 30.0, ("Yoga Mat", "Adjustable Dumbbell", "Resistance Bands")),
    CategoryProfile("Office Products", 15.0, ("Gel Pens", "Spiral Notebook", "Desk Organizer")),
    CategoryProfile("Beauty & Personal Care", 18.0, ("Face Serum", "Hair Dryer", "Makeup Brush Set")),
    CategoryProfile("Pet Supplies", 20.0, ("Dog Bed", "Cat Scratching Post", "Pet Water Fountain")),
    CategoryProfile("Garden & Outdoor", 40.0, ("Garden Hose", "Solar Path Lights", "Pruning Shears")),
    CategoryProfile("Power Tools", 90.0, ("Cordless Drill", "Circular Saw", "Impact Driver")),
    CategoryProfile("Baby Products", 28.0, ("Baby Monitor", "Diaper Bag", "Teething Toy")),
    CategoryProfile("Car Electronics", 65.0, ("Dash Cam", "Car Phone Mount", "Bluetooth FM Transmitter")),
    CategoryProfile("Video Games", 40.0, ("Gaming Controller", "Charging Dock", "Gaming Headset")),
    CategoryProfile("Smart Home", 45.0, ("Smart Plug", "Video Doorbell", "Smart Bulb")),
    CategoryProfile("Arts & Crafts", 14.0, ("Acrylic Paint Set", "Sketchbook", "Knitting Yarn")),
)
BRANDS = (
    "Acme",
    "Nordvik",
    "Zenith",
    "Orbitek",
    "Maison Lumière",
    "Kōhī",
    "Brightway",
    "Alpenglow",
    "Vantage",
    "Pioneer & Co",
    "Sól",
    "Tundra",
    "Nimbus",
    "Crestline",
    "Übergear",
)
ADJECTIVES = (
    "Premium",
    "Lightweight",
    "Durable",
    "Compact",
    "Ergonomic",
    "Waterproof",
    "Portable",
    "Professional",
    "Classic",
    "Eco-Friendly",
)
COLOURS = ("Black", "Navy Blue", "Rose Gold", "Forest Green", "Charcoal", "Crème", "Red", "White")
BOUGHT_LAST_MONTH = (0, 0, 0, 0, 0, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 2000, 5000)
# The steps boughtInLastMonth drifts along from one version to the next (the real file's values).
BOUGHT_LADDER = tuple(sorted(set(BOUGHT_LAST_MONTH)))
# Of the versions in a price history, about this share re-price a product not re-priced on an earlier day.
FIRST_VERSION_SHARE = 0.6
SALE_CHANCE = 0.15
SALE_END_CHANCE = 0.6
BEST_SELLER_FLIP_CHANCE = 0.04
UPDATES_FOLDER = "updates"


def asin_for(index: int) -> str:
    value = (index * ASIN_STRIDE) % ASIN_SUFFIX_SPACE
    digits = []
    for _ in range(8):
        value, remainder = divmod(value, 36)
        digits.append(ASIN_ALPHABET[remainder])
    return "B0" + "".join(reversed(digits))


def category_rows(count: int) -> list[dict[str, object]]:
    """`count` categories with ids 1..count; names repeat the profiles with a series number past 20."""
    rows = []
    for category_id in range(1, count + 1):
        profile = CATEGORY_PROFILES[(category_id - 1) % len(CATEGORY_PROFILES)]
        series = (category_id - 1) // len(CATEGORY_PROFILES)
        name = profile.name if series == 0 else f"{profile.name} {series + 1}"
        rows.append({"id": category_id, "category_name": name})
    return rows


def _title(rng: random.Random, profile: CategoryProfile) -> str:
    title = f"{rng.choice(BRANDS)} {rng.choice(ADJECTIVES)} {rng.choice(profile.nouns)}"
    if rng.random() < 0.6:
        title += f", {rng.choice(COLOURS)}"
    if rng.random() < 0.3:
        title += f", {rng.randint(2, 12)}-Pack"
    if rng.random() < 0.05:
        title += ' (13" Model)'
    return title


def _rating(rng: random.Random) -> tuple[float, int]:
    if rng.random() < 0.2:  # like the real file: unrated products have 0 stars and 0 reviews
        return 0.0, 0
    stars = round(min(5.0, max(1.0, rng.gauss(4.3, 0.4))), 1)
    return stars, int(rng.lognormvariate(4.0, 1.8))


def product_rows(count: int, category_count: int, seed: int) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)
    for index in range(count):
        category_id = rng.randint(1, category_count)
        profile = CATEGORY_PROFILES[(category_id - 1) % len(CATEGORY_PROFILES)]
        asin = asin_for(index + 1)
        price = round(rng.lognormvariate(math.log(profile.median_price), 0.8), 2)
        has_list_price = rng.random() < 0.25
        list_price = round(price * rng.uniform(1.05, 1.6), 2) if has_list_price else 0.0
        stars, reviews = _rating(rng)
        yield {
            "asin": asin,
            "title": _title(rng, profile),
            "imgUrl": f"https://m.media-amazon.com/images/I/{asin}._AC_UL320_.jpg",
            "productURL": f"https://www.amazon.com/dp/{asin}",
            "stars": stars,
            "reviews": reviews,
            "price": price,
            "listPrice": list_price,
            "category_id": category_id,
            "isBestSeller": rng.random() < 0.006,
            "boughtInLastMonth": rng.choice(BOUGHT_LAST_MONTH),
        }


@dataclass
class Shelf:
    """What a product's next version starts from: its current row and, while it is on sale, the price it had
    before the sale and the list price it had then (restored when the sale ends)."""

    row: dict[str, Any]
    regular_price: float | None = None
    regular_list_price: float = 0.0


def _update_plan(rng: random.Random, products: int, updates: int, days: int) -> dict[int, list[int]]:
    """Product index -> the days (1..`days`, ascending) it is re-priced on, `updates` (index, day) pairs in all.

    About FIRST_VERSION_SHARE of the versions pick distinct products; the rest land on other days of those.
    """
    if updates > products * days:
        raise ValueError(f"--updates {updates} is more than --products {products} x --days {days} versions")
    distinct = min(products, updates, max(math.ceil(updates / days), round(updates * FIRST_VERSION_SHARE)))
    chosen = sorted(rng.sample(range(products), distinct))
    counts = dict.fromkeys(chosen, 1)
    if days > 1:
        for slot in rng.sample(range(distinct * (days - 1)), updates - distinct):
            counts[chosen[slot // (days - 1)]] += 1
    return {index: sorted(rng.sample(range(1, days + 1), count)) for index, count in counts.items()}


def _small_move(rng: random.Random, price: float) -> float:
    """Most re-pricings: a few percent up or down (sd 3 %, at most 10 %)."""
    return price * (1 + min(0.1, max(-0.1, rng.gauss(0, 0.03))))


def _reprice(rng: random.Random, shelf: Shelf) -> dict[str, Any]:
    """The product's next version: a new price (a small move, a sale starting or ending), maybe a flipped
    best-seller flag, boughtInLastMonth one step up or down the real file's values, a few more reviews."""
    row = dict(shelf.row)
    price = float(row["price"])
    if shelf.regular_price is not None and rng.random() < SALE_END_CHANCE:
        price, row["listPrice"] = _small_move(rng, shelf.regular_price), shelf.regular_list_price
        shelf.regular_price = None
    elif shelf.regular_price is None and rng.random() < SALE_CHANCE:
        shelf.regular_price, shelf.regular_list_price = price, float(row["listPrice"])
        row["listPrice"] = max(shelf.regular_list_price, price)  # the reference the sale is measured against
        price *= 1 - rng.uniform(0.2, 0.4)
    else:
        price = _small_move(rng, price)
    row["price"] = round(max(0.01, price), 2)
    if rng.random() < BEST_SELLER_FLIP_CHANCE:
        row["isBestSeller"] = not row["isBestSeller"]
    step = BOUGHT_LADDER.index(row["boughtInLastMonth"]) + rng.choice((-1, 0, 0, 1))
    row["boughtInLastMonth"] = BOUGHT_LADDER[min(len(BOUGHT_LADDER) - 1, max(0, step))]
    if row["reviews"]:
        row["reviews"] = int(row["reviews"]) + rng.randint(0, 1 + int(row["reviews"]) // 50)
    shelf.row = row
    return row


def price_updates(products: int, categories: int, seed: int, updates: int, days: int) -> list[list[dict[str, object]]]:
    """`days` lists of product rows (day 1 first), `updates` rows in all: new versions of products of
    `product_rows(products, categories, seed)`, in that file's order within a day. Deterministic in `seed`,
    and drawn from a generator of their own, so the base files do not depend on them."""
    rng = random.Random(f"updates:{seed}")
    plan = _update_plan(rng, products, updates, days)
    history: list[list[dict[str, object]]] = [[] for _ in range(days)]
    for index, row in enumerate(product_rows(products, categories, seed)):
        if index in plan:
            shelf = Shelf(row)
            for day in plan[index]:
                history[day - 1].append(_reprice(rng, shelf))
    return history


def day_file_name(day: int, days: int) -> str:
    """`day_01.csv`: numbered from 1, zero-padded so the files sort by day."""
    return f"day_{day:0{max(2, len(str(days)))}d}.csv"


def write_updates(out_dir: Path, products: int, categories: int, seed: int, updates: int, days: int) -> list[Path]:
    """Write the price history as `out_dir/updates/day_*.csv` (day files of an earlier run are removed)."""
    folder = out_dir / UPDATES_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("day_*.csv"):
        stale.unlink()
    paths = []
    for day, rows in enumerate(price_updates(products, categories, seed, updates, days), start=1):
        paths.append(_write_csv(folder / day_file_name(day, days), PRODUCT_FIELDS, rows))
    return paths


def _write_csv(path: Path, fields: tuple[str, ...], rows: Iterable[dict[str, object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_dataset(out_dir: Path, products: int, categories: int, seed: int) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    categories_path = _write_csv(out_dir / "amazon_categories.csv", CATEGORY_FIELDS, category_rows(categories))
    products_path = _write_csv(
        out_dir / "amazon_products.csv", PRODUCT_FIELDS, product_rows(products, categories, seed)
    )
    return products_path, categories_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--categories", type=int, default=len(CATEGORY_PROFILES) * 3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "sample")
    parser.add_argument("--updates", type=int, default=0, help="new versions of existing products (price history)")
    parser.add_argument("--days", type=int, default=5, help="simulated days the updates are spread over")
    args = parser.parse_args(argv)
    if args.updates < 0 or args.days < 1:
        parser.error("--updates must be 0 or more and --days 1 or more")
    products_path, categories_path = write_dataset(args.out, args.products, args.categories, args.seed)
    print(f"wrote {args.products} products to {products_path} and {args.categories} categories to {categories_path}")
    if args.updates:
        try:
            days = write_updates(args.out, args.products, args.categories, args.seed, args.updates, args.days)
        except ValueError as error:
            parser.error(str(error))
        print(f"wrote {args.updates} price updates over {len(days)} days to {days[0].parent}")


if __name__ == "__main__":
    main()
