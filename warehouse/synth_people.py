"""Synthetic customers, their latent traits, and the product catalogue (vectorized numpy + pyarrow)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.names import FIRST_NAMES, LAST_NAMES

US = 1_000_000  # microseconds per second
DAY_US = 86_400 * US

# (country, city, IANA timezone, phone prefix, weight): timezone always follows the city's country
CITIES: tuple[tuple[str, str, str, str, float], ...] = (
    ("US", "New York", "America/New_York", "+1", 0.10),
    ("US", "Chicago", "America/Chicago", "+1", 0.06),
    ("US", "Denver", "America/Denver", "+1", 0.03),
    ("US", "Los Angeles", "America/Los_Angeles", "+1", 0.07),
    ("CA", "Toronto", "America/Toronto", "+1", 0.04),
    ("CA", "Vancouver", "America/Vancouver", "+1", 0.02),
    ("GB", "London", "Europe/London", "+44", 0.08),
    ("GB", "Manchester", "Europe/London", "+44", 0.04),
    ("DE", "Berlin", "Europe/Berlin", "+49", 0.06),
    ("DE", "München", "Europe/Berlin", "+49", 0.04),
    ("FR", "Paris", "Europe/Paris", "+33", 0.06),
    ("FR", "Lyon", "Europe/Paris", "+33", 0.02),
    ("ES", "Madrid", "Europe/Madrid", "+34", 0.04),
    ("IT", "Milano", "Europe/Rome", "+39", 0.04),
    ("NL", "Amsterdam", "Europe/Amsterdam", "+31", 0.03),
    ("SE", "Stockholm", "Europe/Stockholm", "+46", 0.03),
    ("JP", "Tokyo", "Asia/Tokyo", "+81", 0.05),
    ("IN", "Bengaluru", "Asia/Kolkata", "+91", 0.05),
    ("BR", "São Paulo", "America/Sao_Paulo", "+55", 0.05),
    ("AU", "Sydney", "Australia/Sydney", "+61", 0.03),
    ("AU", "Perth", "Australia/Perth", "+61", 0.01),
)
STREETS = (
    "Oak",
    "Maple",
    "High",
    "Station",
    "Church",
    "Park",
    "Mill",
    "Lake",
    "Hill",
    "King",
    "Queen",
    "Bridge",
)
STREET_KINDS = ("Street", "Road", "Avenue", "Lane", "Way")
ACQUISITION_CHANNELS = (
    "organic_search",
    "paid_search",
    "paid_social",
    "referral",
    "email",
    "affiliate",
    "direct",
)
ACQUISITION_WEIGHTS = (0.25, 0.20, 0.18, 0.10, 0.07, 0.05, 0.15)
CATEGORIES = ("apparel", "footwear", "accessories", "home", "beauty", "sports", "electronics", "kids")
CATEGORY_PRICE = (45.0, 80.0, 30.0, 55.0, 25.0, 60.0, 150.0, 28.0)
ADJECTIVES = ("Classic", "Everyday", "Premium", "Organic", "Urban", "Nordic", "Vintage", "Essential", "Light")
N_PRODUCTS = 200


def ascii_fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.replace("ø", "o").lower() or "x"


def ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """'C0000001'-style identifiers, built in Arrow (fast at millions of rows)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def take_strings(pool: tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pa.array(pool, pa.string()).take(pa.array(idx, pa.int32()))


@dataclass
class People:
    """Customers as numpy arrays (for the other generators) plus the Arrow table that is written."""

    table: pa.Table
    customer_id: pa.Array
    signup_day: np.ndarray  # days since epoch
    consent: np.ndarray  # (n, 3) bool: email, sms, push
    preferred: np.ndarray  # index into CHANNELS
    affinity: np.ndarray  # (n, 3) latent channel affinity
    engagement: np.ndarray  # latent sessions multiplier
    satisfaction: np.ndarray
    favourite_category: np.ndarray


@dataclass
class _Contacts:
    """Names, email, city, phone and street of each customer (indices into the name and city pools)."""

    first: np.ndarray
    last: np.ndarray
    city: np.ndarray
    email: pa.Array
    phone: pa.Array
    street: pa.Array


def _draw_contacts(rng: np.random.Generator, num: np.ndarray) -> _Contacts:
    n = len(num)
    fi = rng.integers(0, len(FIRST_NAMES), n)
    li = rng.integers(0, len(LAST_NAMES), n)
    first_ascii = tuple(ascii_fold(x) for x in FIRST_NAMES)
    last_ascii = tuple(ascii_fold(x) for x in LAST_NAMES)
    email = pc.binary_join_element_wise(
        take_strings(first_ascii, fi), take_strings(last_ascii, li), pc.cast(pa.array(num), pa.string()), "."
    )
    email = pc.binary_join_element_wise(email, "@example.com", "")

    city_w = np.array([c[4] for c in CITIES])
    ci = rng.choice(len(CITIES), n, p=city_w / city_w.sum())
    phone_digits = pc.cast(pa.array(rng.integers(100_000_000, 999_999_999, n)), pa.string())
    phone = pc.binary_join_element_wise(take_strings(tuple(c[3] for c in CITIES), ci), phone_digits, " ")
    street = pc.binary_join_element_wise(
        pc.cast(pa.array(rng.integers(1, 300, n)), pa.string()),
        take_strings(STREETS, rng.integers(0, len(STREETS), n)),
        take_strings(STREET_KINDS, rng.integers(0, len(STREET_KINDS), n)),
        " ",
    )
    return _Contacts(first=fi, last=li, city=ci, email=email, phone=phone, street=street)


def _draw_signup_days(rng: np.random.Generator, n: int, as_of_day: int) -> np.ndarray:
    """Signups: a steady flow over ~3 years plus a fresh cohort in the last weeks (new-user segment)."""
    bucket = rng.random(n)
    days_ago = np.where(
        bucket < 0.03,
        rng.integers(0, 7, n),
        np.where(bucket < 0.05, rng.integers(7, 30, n), rng.integers(30, 1095, n)),
    )
    return as_of_day - 1 - days_ago


def _draw_channel_consent(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consent per channel, latent channel affinity, and the preferred channel among the consented."""
    consent = np.stack([rng.random(n) < 0.85, rng.random(n) < 0.45, rng.random(n) < 0.55], axis=1)
    affinity = rng.normal(0.0, 0.4, (n, 3))
    masked = np.where(consent, affinity, -np.inf)
    preferred = np.where(consent.any(axis=1), masked.argmax(axis=1), 0)
    affinity[np.arange(n), preferred] += 0.5
    return consent, affinity, preferred


def make_customers(rng: np.random.Generator, n: int, as_of_day: int) -> People:
    num = np.arange(1, n + 1)
    customer_id = ids("C", num, 7)
    contacts = _draw_contacts(rng, num)
    signup_day = _draw_signup_days(rng, n, as_of_day)
    consent, affinity, preferred = _draw_channel_consent(rng, n)
    ci = contacts.city
    table = pa.table(
        {
            "customer_id": customer_id,
            "first_name": take_strings(FIRST_NAMES, contacts.first),
            "last_name": take_strings(LAST_NAMES, contacts.last),
            "email": contacts.email,
            "phone": contacts.phone,
            "address": contacts.street,
            "city": take_strings(tuple(c[1] for c in CITIES), ci),
            "country": take_strings(tuple(c[0] for c in CITIES), ci),
            "timezone": take_strings(tuple(c[2] for c in CITIES), ci),
            "signup_date": pa.array(signup_day.astype(np.int32), pa.date32()),
            "acquisition_channel": take_strings(
                ACQUISITION_CHANNELS, rng.choice(len(ACQUISITION_CHANNELS), n, p=ACQUISITION_WEIGHTS)
            ),
            "consent_email": pa.array(consent[:, 0]),
            "consent_sms": pa.array(consent[:, 1]),
            "consent_push": pa.array(consent[:, 2]),
            "preferred_channel": take_strings(("email", "sms", "push"), preferred),
        }
    )
    return People(
        table=table,
        customer_id=customer_id,
        signup_day=signup_day,
        consent=consent,
        preferred=preferred,
        affinity=affinity,
        engagement=rng.lognormal(0.0, 0.6, n),
        satisfaction=rng.normal(0.0, 1.0, n),
        favourite_category=rng.integers(0, len(CATEGORIES), n),
    )


def make_products(rng: np.random.Generator) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """200 products; returns the table, each product's category index and list price."""
    cat = np.arange(N_PRODUCTS) % len(CATEGORIES)
    price = np.round(np.array(CATEGORY_PRICE)[cat] * rng.lognormal(0.0, 0.45, N_PRODUCTS), 2) + 0.99
    price = np.round(price, 2)
    name = pc.binary_join_element_wise(
        take_strings(ADJECTIVES, rng.integers(0, len(ADJECTIVES), N_PRODUCTS)),
        take_strings(CATEGORIES, cat),
        ids("#", np.arange(1, N_PRODUCTS + 1), 3),
        " ",
    )
    table = pa.table(
        {
            "product_id": ids("P", np.arange(1, N_PRODUCTS + 1), 4),
            "product_name": name,
            "category": take_strings(CATEGORIES, cat),
            "list_price": pa.array(price, pa.float64()),
        }
    )
    return table, cat, price
