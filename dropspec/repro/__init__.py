"""Repro scripts: a case's model module plus one clause's check, composed from the real modules
``checks.py`` and ``probes.py`` (NumPy only) and ``dropspec.messages``; see ``compose``."""

from .compose import (
    NoScript,
    ReproCase,
    first_bad_clause,
    group_of,
    partners_of,
    repro_script,
    script_from_results,
)

__all__ = [
    "NoScript",
    "ReproCase",
    "first_bad_clause",
    "group_of",
    "partners_of",
    "repro_script",
    "script_from_results",
]
