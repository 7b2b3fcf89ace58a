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


def rate_one_error(kind: str, message: str) -> tuple[int, str, str | None]:
    """How a layer set to rate 1.0 that raised ``kind: message`` is judged: (1 when the rule is broken, what it
    did, what it should do). An error naming the rate or its range refuses the rate, as tf.nn.dropout's "rate
    must be a scalar tensor or a float in the range [0, 1)" does, and is recorded as that refusal; anything else
    (a ZeroDivisionError deep inside) is a crash."""
    lines = [line.strip() for line in message.splitlines() if line.strip()] or [""]
    if kind == "ContractError" and "NaN or infinite" in message:  # the suite's check of the outputs raised it
        return 1, f"at rate 1.0 returns outputs that are not finite ({kind}: {lines[0][:300]})", "finite outputs"

    def names(line: str, word: str) -> bool:  # as a word: "iterate" or "generate" do not name the rate
        if word.startswith("["):
            return word in line.replace(" ", "")
        words = "".join(ch if ch.isalnum() or ch == "_" else " " for ch in line.lower()).split()
        return any(w == word or w.endswith("_" + word) or (word == "probabilit" and w.startswith(word)) for w in words)

    # the line that names the rate, or its range, best: a framework's wrapper line often names only the layer
    for word in ("[0,1", "rate", "probabilit", "keep_prob", "dropout"):
        named = [line for line in lines if names(line, word)]
        if named:
            return 0, f"refuses rate 1.0: {kind}: {named[0][:300]}", None
    return 1, f"raises at rate 1.0 with an error that does not name the rate: {kind}: {lines[0][:300]}", "a refusal"
