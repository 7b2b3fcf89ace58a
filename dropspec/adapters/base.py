"""What every adapter shares. ``Adapter`` is the contract (``dropspec.adapter``); this module is where a
third-party adapter imports it from, with the case types it returns."""

from __future__ import annotations

from ..adapter import Adapter
from ..case import CallInputs, Case, Claim

__all__ = ["Adapter", "CallInputs", "Case", "Claim"]
