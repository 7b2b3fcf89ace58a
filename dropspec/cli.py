"""The ``dropspec`` command."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

from .paths import UnsafeName, safe_name
from .registry import UnknownAdapter, adapter_targets, load_adapter
from .spec import SPEC_DIR, SpecError, json_schema, load_scheme, load_spec

# exit codes of `dropspec run` (README, "Exit codes")
OK, DEVIATES, CONFIG_ERROR, MISSING, CRASH, INTERNAL = 0, 1, 2, 3, 4, 70


def _config_error(message: str) -> int:
    print(f"dropspec: {message}", file=sys.stderr)
    return CONFIG_ERROR


def _check_run(args: argparse.Namespace) -> str | None:
    """Every configuration error of a run, found before any framework runs: one line, or None."""
    from .engine import Suite

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return f"--out {args.out!r} is a file; name a directory for the results (default: results)"
    try:
        adapter = load_adapter(args.adapter)
        safe_name(adapter.name, "adapter name")
        Suite(adapter)  # the cases, their claims and the deviations file are checked here
    except (UnknownAdapter, UnsafeName, SpecError, ValueError) as exc:
        return str(exc)
    return None


def _run(args: argparse.Namespace) -> int:
    import pytest

    problem = _check_run(args)
    if problem:
        return _config_error(problem)
    if args.list:
        return _list_cases(args)
    reason = load_adapter(args.adapter).unavailable_reason()
    if reason and args.require_available:
        print(f"dropspec: adapter {args.adapter!r} must run here but cannot: {reason}", file=sys.stderr)
        return MISSING
    if reason:
        print(f"dropspec: adapter {args.adapter!r} cannot run here, its tests are skipped: {reason}")
    conformance = Path(__file__).resolve().parent / "conformance"
    argv = [
        str(conformance),
        f"--dropspec-adapter={args.adapter}",
        f"--dropspec-out={args.out}",
        f"--dropspec-timeout={args.timeout}",
        "-p",
        "no:cacheprovider",
        f"--rootdir={conformance}",
        "-q",
        "-rfE",
    ]
    if args.k:
        argv += ["-k", args.k]
    if args.no_deviations:
        argv.append("--dropspec-no-deviations")
    code = pytest.main(argv)
    results = Path(args.out) / f"{load_adapter(args.adapter).name}.json"
    print(f"dropspec: results in {results}")
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        return _config_error(f"no test matched -k {args.k!r}; `dropspec spec clauses` lists the clause ids")
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERRUPTED):
        return INTERNAL
    if args.exit_zero:
        return OK
    return _verdict_code(results) if code == pytest.ExitCode.TESTS_FAILED else OK


def _list_cases(args: argparse.Namespace) -> int:
    """The cases a run would observe (those whose id contains one of -k's words, when given), each with
    whether it can run here, and why not: nothing is run."""
    adapter = load_adapter(args.adapter)
    reason = adapter.unavailable_reason()
    words = [w for w in (args.k or "").replace("(", " ").replace(")", " ").split() if w not in ("or", "and", "not")]
    for case in adapter.cases() if reason is None else []:
        if words and not any(w in case.id for w in words):
            continue
        why = adapter.case_unavailable(case)
        print(f"{adapter.name} {case.id}: " + (f"skipped: {why}" if why else "would run"))
    if reason:
        print(f"{adapter.name}: skipped: {reason}")
    return OK


def _verdict_code(results: Path) -> int:
    """CRASH when a case crashed unexpectedly, else DEVIATES: an unexpected failure."""
    try:
        data = json.loads(results.read_text())
    except (OSError, ValueError):
        return DEVIATES
    crashed = any(r["status"] == "error" and not r.get("expected") for r in data.get("results", []))
    return CRASH if crashed else DEVIATES


def _report(args: argparse.Namespace) -> int:
    from .publish.report import write_reports

    folders = [Path(r) for r in (args.results or ["results"])]
    results = folders[0]
    # results/history/ (from `tox -m history`) is read when present: the main matrix ignores subdirectories
    history = Path(args.history) if args.history else results / "history"
    history_dir = history if history.is_dir() else None
    if args.only_history or (args.history and not any(results.glob("*.json"))):
        if history_dir is None:
            print(f"dropspec: no {history}/; run `tox -m history` first", file=sys.stderr)
            return 2
        return _history_only(history_dir, Path(args.out), no_site=args.no_site)
    for folder in folders:
        if not folder.is_dir() or not (any(folder.glob("*.json")) or any(folder.glob("*.json.*.partial"))):
            print(f"dropspec: no results in {folder}/; run `dropspec run --adapter NAME` first", file=sys.stderr)
            return 2
    try:
        readme = Path(args.readme) if args.readme else None
        matrix = write_reports(folders, Path(args.out), readme=readme, site=not args.no_site, history_dir=history_dir)
    except ValueError as exc:
        print(f"dropspec: {exc}", file=sys.stderr)
        return 2
    print(f"dropspec: wrote {args.out}/matrix.json and {args.out}/matrix.md ({len(matrix['adapters'])} adapters)")
    if (Path(args.out) / "history.json").is_file() and history.is_dir():
        print(f"dropspec: wrote {args.out}/history.json and {args.out}/history.md from {history}/")
    if not args.no_site:
        print(f"dropspec: wrote {args.out}/index.html, {args.out}/masks/ and {args.out}/spec/")
    return 0


def _history_only(history: Path, out: Path, *, no_site: bool) -> int:
    """history.{json,md} without the matrix's results (a fresh clone: results/ is not committed), and the
    History section of the existing index.html rewritten in place."""
    from .publish.history import write_history
    from .publish.page import splice_history

    try:
        data = write_history(history, out)
    except ValueError as exc:
        print(f"dropspec: {exc}", file=sys.stderr)
        return 2
    if data is None:
        print(f"dropspec: no runs in {history}/RELEASE/*.json; run `tox -m history` first", file=sys.stderr)
        return 2
    print(f"dropspec: wrote {out}/history.json and {out}/history.md from {history}/")
    if not no_site:
        if splice_history(out / "index.html", data):
            print(f"dropspec: updated the History section of {out}/index.html")
        else:
            print(f"dropspec: no {out}/index.html with a History section to update; `dropspec report` writes one")
    return 0


def _render(args: argparse.Namespace) -> int:
    from .publish.specdoc import write_spec_document

    try:
        paths = write_spec_document(Path(args.out), load_spec())
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"dropspec: wrote {', '.join(str(p) for p in paths)}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from .publish.explain import ExplainError, explain

    try:
        text = explain(args.adapter, args.case, args.clause, Path(args.results), reports_dir=Path(args.reports))
        sys.stdout.write(text)
    except ExplainError as exc:
        print(f"dropspec: {exc}", file=sys.stderr)
        return 2
    return 0


def _validate(args: argparse.Namespace) -> int:
    try:
        if args.files:
            seen: dict[str, str] = {}
            for name in args.files:
                scheme = load_scheme(Path(name))
                for clause in scheme.clauses:
                    if clause.id in seen:
                        raise SpecError(f"{name}: clause id {clause.id!r} is also in {seen[clause.id]}; rename one")
                    seen[clause.id] = name
                print(f"{name}: ok ({len(scheme.clauses)} clauses)")
        else:
            spec = load_spec()
            print(f"{SPEC_DIR}: ok ({len(spec.schemes)} schemes, {len(spec.clauses())} clauses)")
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _schema(args: argparse.Namespace) -> int:
    sys.stdout.write(json_schema())
    return 0


def _clauses(args: argparse.Namespace) -> int:
    for _, clause in load_spec().clauses():
        print(f"{clause.id:55} {clause.level:6} {clause.check.kind}")
    return 0


def _availability(name: str) -> str | None:
    """Whether adapter ``name`` can run here, asked in a fresh process: checking imports the framework, and
    Keras reads ``KERAS_BACKEND`` once per process, so one process per adapter tells every backend apart."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dropspec.registry", name],
            capture_output=True,
            text=True,
            timeout=300,
            env=dict(os.environ),
        )
    except subprocess.TimeoutExpired:
        return "checking it took more than 300 s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"cannot be loaded: {last}"
    return done.stdout.strip() or None


def _adapters(args: argparse.Namespace) -> int:
    targets = sorted(adapter_targets().items())
    with ThreadPoolExecutor(max_workers=4) as pool:
        reasons = list(pool.map(_availability, [name for name, _ in targets]))
    for (name, target), reason in zip(targets, reasons):
        state = "available" if reason is None else f"unavailable: {reason}"
        print(f"{name:20} {state}  ({target})")
    return 0


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the timeout must be a positive number of seconds")
    return value


class _Parser(argparse.ArgumentParser):
    """A bad argument is one line that names it, with where to read more, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(CONFIG_ERROR, f"{self.prog}: {message} (`{self.prog} --help` lists the options)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="dropspec", description="Dropout in recurrent cells, specified and checked.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the conformance suite for one adapter")
    run.add_argument("--adapter", required=True, help="adapter name (see `dropspec adapters`)")
    run.add_argument("--out", default="results", help="results directory (default: results)")
    run.add_argument("--timeout", type=_timeout, default=600.0, help="seconds before a case is recorded as hung")
    run.add_argument("-k", help="only tests matching this pytest -k expression")
    run.add_argument("--exit-zero", action="store_true", help="exit 0 when the run completed, whatever the verdicts")
    run.add_argument(
        "--no-deviations",
        action="store_true",
        help="record raw verdicts, ignoring the adapter's known deviations (they describe the newest release; "
        "`tox -m history` runs older ones)",
    )
    run.add_argument(
        "--require-available", action="store_true", help="exit 3 instead of skipping when the framework is missing"
    )
    run.add_argument("--list", action="store_true", help="list the cases matching -k's words, and whether each runs")
    run.set_defaults(func=_run)

    report = sub.add_parser("report", help="merge results into reports/matrix.{json,md}")
    report.add_argument(
        "--results",
        action="append",
        help="results directory (default: results); give it once per folder to merge runs from several machines",
    )
    report.add_argument("--out", default="reports", help="output directory (default: reports)")
    report.add_argument("--readme", help="also write the findings into this README's 'What we found' block")
    report.add_argument("--no-site", action="store_true", help="skip index.html, masks/ and spec/")
    report.add_argument(
        "--history",
        help="runs of older releases, DIR/RELEASE/ADAPTER.json (default: RESULTS/history when it exists); "
        "writes history.{json,md} and the page's History section",
    )
    report.add_argument(
        "--only-history",
        action="store_true",
        help="only history.{json,md} and the History section of OUT/index.html, updated in place; the matrix "
        "and the rest of the page are left as they are",
    )
    report.set_defaults(func=_report)

    explain = sub.add_parser("explain", help="a bug report in Markdown for one (adapter, case, clause) result")
    explain.add_argument("adapter")
    explain.add_argument("case")
    explain.add_argument("clause")
    explain.add_argument(
        "--results", default="results", help="results directory, read first when it has the adapter (default: results)"
    )
    explain.add_argument(
        "--reports", default="reports", help="published reports, read otherwise: matrix.json, repros/ (default reports)"
    )
    explain.set_defaults(func=_explain)

    spec = sub.add_parser("spec", help="work with the spec").add_subparsers(dest="spec_command", required=True)
    validate = spec.add_parser("validate", help="validate scheme files (default: all of spec/)")
    validate.add_argument("files", nargs="*")
    validate.set_defaults(func=_validate)
    spec.add_parser("schema", help="print the JSON Schema of a scheme file").set_defaults(func=_schema)
    spec.add_parser("clauses", help="list every clause id").set_defaults(func=_clauses)
    render = spec.add_parser("render", help="the spec as Markdown and HTML, with a page comparing schemes")
    render.add_argument("--out", default="reports/spec", help="output directory (default: reports/spec)")
    render.set_defaults(func=_render)

    sub.add_parser("adapters", help="list adapters and whether each can run here").set_defaults(func=_adapters)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, not at exit: a reader that closed the pipe is met inside this try
        return code
    except BrokenPipeError:  # `dropspec spec clauses | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
