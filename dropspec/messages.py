"""One grammar for every verdict: the suite's results and the repro scripts print through these functions
(a script embeds their source), so a deviation reads the same wherever it is shown. Stdlib only."""


def case_tag(clause: str, label: str, seed: int) -> str:
    """Where a verdict comes from: ``[clause; label, seed=N]``."""
    return f"[{clause}; {label}, seed={seed}]"


def verdict_message(observed: str, tag: str, expected: str | None = None) -> str:
    """``X, but should be Y [tag]`` for a broken rule (``expected`` given), else ``X [tag]``."""
    if expected is None:
        return f"{observed} {tag}"
    return f"{observed}, but should be {expected} {tag}"
