"""The README's 'Test your own cell' example runs and conforms, so the README stays true."""

from __future__ import annotations

import re
from pathlib import Path

from dropspec.engine import Suite


def test_readme_adapter_example_conforms() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = re.search(r"```python\n# my_module.py\n(.*?)```", readme, re.S).group(1)
    assert len(code.splitlines()) <= 35
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    results = Suite(namespace["MyAdapter"]()).run()
    assert {r.status for r in results} == {"pass", "not_applicable"}
    assert sum(r.status == "pass" for r in results) >= 15
