"""``vidrag batch run NOTEBOOK -p NAME VALUE ...``: run a batch notebook once with papermill.

Values given with ``-p`` are parsed as JSON when they are JSON (``'["a", "b"]'``, ``3``,
``true``) and taken as strings otherwise, so a list of sources arrives as a list, never
as code. The notebook runs in its own folder (as it does in Jupyter), so paths in
``-p`` values should be absolute.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ..errors import MissingDependency, NotFound, VidragError
from . import emit_json


def parse_value(raw: str):
    """A ``-p`` value: its JSON meaning when it is JSON, else the text itself."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _declared(notebook: Path) -> set[str]:
    import papermill

    try:
        return set(papermill.inspect_notebook(str(notebook)))
    except Exception:  # a notebook papermill cannot inspect still runs; it just gets no extras
        return set()


def cmd_batch_run(args) -> int:
    notebook = Path(args.notebook).expanduser().resolve()
    if not notebook.is_file():
        raise NotFound(f"No notebook at {args.notebook}")
    try:
        import papermill
    except ImportError:
        raise MissingDependency.for_extra("vidrag batch run", "hub", "papermill") from None
    params = {name: parse_value(value) for name, value in args.param or []}
    output = (
        Path(args.output)
        if args.output
        else Path.cwd() / (f"{notebook.stem}.{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.ipynb")
    )
    tmp = None
    if "summary_path" in _declared(notebook) and not params.get("summary_path"):
        # the notebook can write its run summary: ask for it, to print it here
        tmp = tempfile.TemporaryDirectory(prefix="vidrag-batch-")
        params["summary_path"] = str(Path(tmp.name) / "summary.json")
    try:
        try:
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters=params,
                cwd=str(notebook.parent),
                progress_bar=not args.json and sys.stderr.isatty(),
                log_output=False,
            )
        except papermill.PapermillExecutionError as exc:
            raise VidragError(
                f"{notebook.name} stopped in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
                f"(the executed notebook is {output})"
            ) from None
        summary_file = Path(params["summary_path"]) if params.get("summary_path") else None
        summary = json.loads(summary_file.read_text()) if summary_file and summary_file.is_file() else None
    finally:
        if tmp is not None:
            tmp.cleanup()
    if args.json:
        emit_json({"notebook": str(notebook), "output": str(output), "summary": summary})
        return 0
    print(f"executed {notebook.name} -> {output}")
    if summary:
        print(
            f"{summary['collection']}: {len(summary['added'])} added, {len(summary['skipped'])} skipped, "
            f"{len(summary['failed'])} failed"
        )
        for f in summary["failed"]:
            print(f"  failed at {f['stage']}: {f['source']}: {f['reason']}")
        if summary.get("stopped"):
            print(f"  stopped early: {summary['stopped']}")
    return 0


def register(sub) -> None:
    """Add ``vidrag batch run`` to the parser."""
    p = sub.add_parser("batch", help="run batch notebooks (papermill)")
    batch = p.add_subparsers(dest="batch_command", required=True, metavar="SUBCOMMAND")
    run = batch.add_parser(
        "run",
        help="execute a notebook once with parameters, e.g. "
        "notebooks/01_batch_ingest.ipynb -p collection 'CS101' -p sources '[\"https://...\"]'",
    )
    run.add_argument("notebook", metavar="NOTEBOOK", help="the notebook to execute")
    run.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a parameter; VALUE is parsed as JSON when it is JSON, else taken as text",
    )
    run.add_argument(
        "-o", "--output", help="where to write the executed notebook (default: ./NAME.TIME.ipynb)"
    )
    run.add_argument("--json", action="store_true", help="print the output path and run summary as JSON")
    run.set_defaults(func=cmd_batch_run)
