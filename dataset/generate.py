"""Deterministic generator of realistic Amazon products and categories with the Kaggle schema.

    python dataset/generate.py --products 100000 --seed 7 --out var/generated

writes amazon_products.csv and amazon_categories.csv. The same seed always gives the same bytes. Rows
stream to disk, so any size fits in memory. Titles carry the real file's quirks (commas, quotes, unicode).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def write_dataset(out_dir: Path, products: int, categories: int, seed: int) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    categories_path = out_dir / "amazon_categories.csv"
    products_path = out_dir / "amazon_products.csv"
    with categories_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CATEGORY_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(category_rows(categories))
    with products_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PRODUCT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(product_rows(products, categories, seed))
    return products_path, categories_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--categories", type=int, default=len(CATEGORY_PROFILES) * 3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "sample")
    args = parser.parse_args(argv)
    products_path, categories_path = write_dataset(args.out, args.products, args.categories, args.seed)
    print(f"wrote {args.products} products to {products_path} and {args.categories} categories to {categories_path}")


if __name__ == "__main__":
    main()
