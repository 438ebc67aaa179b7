"""Test doubles and demo fixtures, outside the product packages: local destination servers, the
independent invariant checker, demo warehouse builders. Nothing in the product imports this package."""
