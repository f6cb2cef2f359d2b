"""The one console script, `hiddenemo`: subcommands built from the plain functions in
`hiddenemo.commands`. Their docstrings and dataclass attribute docstrings are the `--help` text;
every subcommand takes `--config FILE.yaml` overlays and `--print_config`.

Command modules import only light things at the top, so `hiddenemo --help` stays fast; the heavy
libraries (torch, mediapipe, onnxruntime) load inside the command that needs them.
"""
from __future__ import annotations

import difflib
import errno
import inspect
import logging
import os
import re
import sys
from pathlib import Path

from jsonargparse import CLI, ArgumentParser, set_parsing_settings

from hiddenemo.commands import ablate, dataset, demo, evaluate, export, extract, report, synthetic, teach, train
from hiddenemo.errors import UserError
from hiddenemo.native_log import quiet_native_logs
from hiddenemo.processes import Terminated, sigterm_as_interrupt

log = logging.getLogger("hiddenemo.cli")

DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}

COMMANDS = {
    "dataset": {
        "_help": "Create a workspace: a manifest of videos with labels and splits.",
        "imigue": dataset.imigue,
        "folder": dataset.folder,
        "table": dataset.table,
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
        # No abbreviations: `--selection.fold` must not quietly become `--selection.folds`.
        super().__init__(*args, description=self.full.get(description, description), allow_abbrev=False,
                         **kwargs)

    def error(self, message: str, ex: Exception | None = None):
        """Two errors a newcomer makes get one clear answer instead of the whole usage: a wrong option
        name (the nearest real ones are suggested) and a missing subcommand (all are listed)."""
        if self.exit_on_error:
            answer = _misspelt_options(self, message) or _missing_command(self, message)
            if answer:
                sys.stderr.write(answer + "\n")
                sys.exit(2)
        super().error(message, ex)


def _prog(parser: ArgumentParser) -> str:
    return parser.prog.replace(" [options]", "")


def nearest_options(wrong: str, known: list[str], n: int = 3) -> list[str]:
    """The options a mistyped `wrong` most likely meant: the same name inside a section first
    (`--epochs` -> `--stage1.epochs`, `--stage2.epochs`), then close spellings."""
    name = wrong.split("=", 1)[0].lstrip("-")
    leaf = {k: k.lstrip("-").rsplit(".", 1)[-1] for k in known}
    same = [k for k in known if leaf[k] == name]
    close_leaves = set(difflib.get_close_matches(name, set(leaf.values()), n, 0.7))
    close = difflib.get_close_matches("--" + name, known, n, 0.7) + [k for k in known if leaf[k] in close_leaves]
    return list(dict.fromkeys(same + close))[:n]


def _misspelt_options(parser: ArgumentParser, message: str) -> str | None:
    if not message.startswith("unrecognized arguments:"):
        return None
    wrong = [a for a in message.removeprefix("unrecognized arguments:").split() if a.startswith("--")]
    if not wrong:
        return None
    known = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    parts = []
    for option in wrong:
        near = nearest_options(option, known)
        parts.append(f"unknown option {option.split('=', 1)[0]}"
                     + (f" (did you mean {' or '.join(near)}?)" if near else ""))
    return f"{_prog(parser)}: error: {'; '.join(parts)}. All options: {_prog(parser)} --help"


def _missing_command(parser: ArgumentParser, message: str) -> str | None:
    missing = re.match(r'expected "([\w.]*?)\.?subcommand" .* not provided', message)
    if missing is None or parser._subcommands_action is None:
        return None
    for name in filter(None, missing.group(1).split(".")):      # "dataset.subcommand": dataset's own list
        parser = parser._subcommands_action._name_parser_map[name]
    action = parser._subcommands_action
    width = max(len(c.dest) for c in action._choices_actions)
    lines = [f"usage: {_prog(parser)} COMMAND [options]   ({_prog(parser)} COMMAND --help explains one)", "commands:"]
    lines += [f"  {c.dest:<{width}}  {c.help}" for c in action._choices_actions]
    return "\n".join(lines + [f"{_prog(parser)}: error: give one of the commands above"])


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


def _keyword_options(argv: list[str]) -> list[str]:
    """`--from FILE` (teach): a Python keyword cannot name a parameter, so the function's is `from_`."""
    return ["--from_" + a[len("--from"):] if a == "--from" or a.startswith("--from=") else a for a in argv]


def main(argv: list[str] | None = None) -> int:
    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    if not sys.stderr.isatty():
        # In a log file every redraw of a progress bar is kept: one every 30 s is enough there.
        # (tqdm reads TQDM_* at import, which is after this; worker processes inherit it.)
        os.environ.setdefault("TQDM_MININTERVAL", "30")
    level = os.environ.get("HIDDENEMO_LOG", "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        with quiet_native_logs(enabled=level.upper() != "DEBUG"), sigterm_as_interrupt():
            CLI(COMMANDS, args=_keyword_options(_packaged_configs(sys.argv[1:] if argv is None else argv)),
                as_positional=False,
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
    except KeyboardInterrupt as e:
        how = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"hiddenemo: {how}; finished work is kept, run the same command again to resume.",
              file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
