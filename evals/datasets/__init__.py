"""Eval datasets: golden cases (pinned expectations), adversarial cases, and a seeded warehouse sample."""

from evals.datasets.adversarial import AdversarialCase, adversarial_cases
from evals.datasets.golden import GoldenCase, GoldenExpectation, check_case, load_golden
from evals.datasets.sample import frozen_sample

__all__ = [
    "AdversarialCase",
    "GoldenCase",
    "GoldenExpectation",
    "adversarial_cases",
    "check_case",
    "frozen_sample",
    "load_golden",
]
