"""The one console script, `hiddenemo`: subcommands built from the plain functions in
`hiddenemo.commands`. Their docstrings and dataclass attribute docstrings are the `--help` text;
every subcommand takes `--config FILE.yaml` overlays and `--print_config`.

Command modules import only light things at the top, so `hiddenemo --help` stays fast; the heavy
libraries (torch, mediapipe, onnxruntime) load inside the command that needs them.
"""
from __future__ import annotations

import errno
import inspect
import logging
import os
import sys
from pathlib import Path

from jsonargparse import CLI, ArgumentParser, set_parsing_settings

from hiddenemo.commands import ablate, dataset, demo, evaluate, export, extract, report, synthetic, teach, train
from hiddenemo.errors import UserError

log = logging.getLogger("hiddenemo.cli")

DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}

COMMANDS = {
    "dataset": {
        "_help": "Create a workspace: a manifest of videos with labels and splits.",
        "imigue": dataset.imigue,
        "folder": dataset.folder,
        "synthetic": synthetic.synthetic,
    },
    "extract": extract.extract,
    "teach": teach.teach,
    "embed": teach.embed,
    "train": train.train,
    "predict": train.predict,
    "ensemble": train.ensemble,
    "export": export.export,
    "apply": export.apply,
    "evaluate": evaluate.evaluate,
    "report": report.report,
    "ablate": ablate.ablate,
    "demo": demo.demo,
}


def _descriptions(commands: dict) -> dict[str, str]:
    """A command's summary line -> its docstring up to `Args:` (the summary and what follows it)."""
    out = {}
    for name, command in commands.items():
        if isinstance(command, dict):
            out.update(_descriptions(command))
        elif name != "_help":
            text = inspect.getdoc(command).split("\nArgs:")[0].strip()
            out[text.splitlines()[0]] = text
    return out


class _Parser(ArgumentParser):
    """The parser of every (sub)command. jsonargparse hands each subcommand's parser only the summary
    line of its docstring (right for the list of subcommands); this maps it back to the whole
    description, so `hiddenemo train --help` explains `train` in full."""
    full = _descriptions(COMMANDS)

    def __init__(self, *args, description: str | None = None, **kwargs):
        super().__init__(*args, description=self.full.get(description, description), **kwargs)


PACKAGED_CONFIGS = Path(__file__).parent / "configs"


def _packaged_configs(argv: list[str]) -> list[str]:
    """`--config configs/cpu.yaml` (as the docs write it) finds the copy inside the package when no
    such file exists here: a pip-installed hiddenemo has no configs/ folder beside the user."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--config" and i + 1 < len(out):
            at, value = i + 1, out[i + 1]
        elif arg.startswith("--config="):
            at, value = i, arg.removeprefix("--config=")
        else:
            continue
        packaged = PACKAGED_CONFIGS / Path(value).name
        if value and not Path(value).exists() and packaged.is_file():
            log.info("--config %s: using the copy inside the package, %s", value, packaged)
            out[at] = f"--config={packaged}" if at == i else str(packaged)
    return out


def main(argv: list[str] | None = None) -> int:
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    if not sys.stderr.isatty():
        # In a log file every redraw of a progress bar is kept: one every 30 s is enough there.
        # (tqdm reads TQDM_* at import, which is after this; worker processes inherit it.)
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    logging.basicConfig(level=os.environ.get("HIDDENEMO_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        CLI(COMMANDS, args=_packaged_configs(sys.argv[1:] if argv is None else argv), as_positional=False,
            parser_class=_Parser,
            description="hiddenemo: hidden emotion understanding from interview videos.")
    except UserError as e:
        # A problem with the user's input or environment: say what and what to do, no traceback.
        print(f"hiddenemo: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.errno not in DISK_ERRORS:
            raise
        # A full, read-only or forbidden output: writes are atomic, so what was finished is intact.
        print(f"hiddenemo: error: cannot write {e.filename or 'an output file'}: {e.strerror}. Earlier "
              "outputs are intact; free space or fix the permissions, then run the same command again "
              "to resume.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hiddenemo: interrupted; finished work is kept, run the same command again to resume.",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
