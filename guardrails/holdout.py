"""Holdout arms from deterministic salted hashes.

Two independent draws per customer, each a sha256 bucket in [0, 10000):
- the global control group uses only salt + customer id, so a customer is in (or out of) global
  control whatever segment they fall into today;
- the per-segment holdout uses salt + segment + customer id, so each segment's holdout is its own
  random sample.
A customer is in the holdout arm if either draw puts them there. Changing the salt reshuffles.
"""

from __future__ import annotations

from hashlib import sha256

from core.contracts import Arm, GuardrailSettings

BUCKETS = 10_000


def bucket(key: str) -> int:
    """A stable bucket in [0, 10000) for a string key."""
    return int.from_bytes(sha256(key.encode()).digest()[:8], "big") % BUCKETS


def global_bucket(customer_id: str, salt: str) -> int:
    return bucket(f"{salt}|global|{customer_id}")


def segment_bucket(customer_id: str, segment: str, salt: str) -> int:
    return bucket(f"{salt}|segment|{segment}|{customer_id}")


def assign_arm(customer_id: str, segment: str, settings: GuardrailSettings) -> Arm:
    salt = settings.holdout_salt
    if global_bucket(customer_id, salt) < settings.global_holdout_pct * 100:
        return "holdout"
    if segment_bucket(customer_id, segment, salt) < settings.segment_holdout_pct * 100:
        return "holdout"
    return "treatment"
