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


def test_readme_plugin_command_works_as_written(tmp_path: Path) -> None:
    """The two steps of 'Test your own cell', in a fresh folder: my_module.py beside you, then the command."""
    import os
    import shlex
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(# my_module.py\n.*?)```", readme, re.S).group(1)
    (tmp_path / "my_module.py").write_text(code)
    command = re.search(r"```sh\n(DROPSPEC_ADAPTERS=.*?)\n```", readme, re.S).group(1)
    env_part, _, args = command.partition(" dropspec ")
    name, _, value = env_part.partition("=")
    env = {**os.environ, name: value.strip('"')}
    script = Path(sys.executable).parent / "dropspec"  # the console script: it does not put "." on sys.path
    fallback = [sys.executable, "-I", "-c", "import sys; from dropspec.cli import main; sys.exit(main())"]
    cli = [str(script)] if script.exists() else fallback
    done = subprocess.run(cli + shlex.split(args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "results" / "mycell.json").is_file()
