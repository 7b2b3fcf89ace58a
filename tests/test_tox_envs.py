"""Every `tox -e ENV` an error message or a skip reason tells a user to run names an environment tox.ini has."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from dropspec.registry import BUILTIN

ROOT = Path(__file__).resolve().parent.parent


def tox_envs() -> set[str]:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    return {s.removeprefix("testenv:") for s in config.sections() if s.startswith("testenv:")}


def test_every_named_tox_env_exists() -> None:
    envs = tox_envs()
    named = {}
    for path in (ROOT / "dropspec").rglob("*.py"):
        for env in re.findall(r"tox -e ([A-Za-z0-9_.-]+)", path.read_text()):
            named.setdefault(env, path.relative_to(ROOT))
    # adapters that name their env through their own name (torch.py's optional packages, keras3's backends)
    named.update({name: "registry" for name in BUILTIN if name.startswith(("keras_", "torchnlp", "fastai"))})
    missing = {env: str(where) for env, where in named.items() if env not in envs}
    assert not missing, f"messages name tox envs that tox.ini lacks: {missing}"
