"""The docs match the code: every `hiddenemo ...` command line in README.md and docs/*.md names real
subcommands and options (what `--help` would list) and existing config files, and every file a doc
links to, or names by its path in the repository, exists."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from hiddenemo.cli import _keyword_options

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"(?<!`)`(hiddenemo [^`]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"`((?:docs|configs|benchmarks|tests|src)/[\w./-]+\.(?:md|py|yaml|yml|html|txt|csv))`")


def command_lines(text: str) -> list[str]:
    """`hiddenemo ...` lines of the code blocks (continuations joined) and of inline code."""
    found = []
    for block in CODE_BLOCK.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        found += [line.strip() for line in joined.splitlines() if re.match(r"\s*(\$ )?(\S*/)?hiddenemo ", line)]
    return found + INLINE.findall(text)


def cases() -> list[tuple[str, str]]:
    return [(doc.relative_to(ROOT).as_posix(), line) for doc in DOCS for line in command_lines(doc.read_text())]


def words(line: str) -> list[str]:
    """The arguments of a documented command: the program, comments, `[`/`]` around optional parts,
    `...` (elided arguments) and placeholder alternatives (`error|warn` -> `error`) set aside."""
    line = re.sub(r"^(\$ )?(\S*/)?hiddenemo ", "", line)
    out = []
    for word in shlex.split(line, comments=True):
        word = word.strip("[]")
        if word and word not in ("...", "…") and not word.startswith(("<", ">")):
            out.append(word.split("|")[0] if re.fullmatch(r"[\w.-]+(\|[\w.-]+)+", word) else word)
    return out


@pytest.fixture(scope="module")
def parser():
    from jsonargparse import auto_parser, set_parsing_settings

    from hiddenemo import cli

    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    return auto_parser(cli.COMMANDS, as_positional=False, parser_class=cli._Parser, description="hiddenemo")


def test_the_docs_have_command_lines():
    assert len(cases()) > 30      # the check below looks at something


@pytest.mark.parametrize("doc, line", cases())
def test_documented_command_lines_use_real_subcommands_and_options(doc, line, parser):
    from hiddenemo.cli import PACKAGED_CONFIGS

    args = _keyword_options(words(line))
    while args and parser._subcommands_action is not None and not args[0].startswith("-"):
        choices = parser._subcommands_action._name_parser_map
        assert args[0] in choices, f"{doc}: `{line}`: no subcommand {args[0]!r} (there are {sorted(choices)})"
        parser = choices[args.pop(0)]
    # `hiddenemo dataset ... --openpose`: the subcommand is elided; one of them must have the option.
    parsers = list(parser._subcommands_action._name_parser_map.values()) if parser._subcommands_action else [parser]
    known = {s for p in parsers for action in p._actions for s in action.option_strings}
    for i, arg in enumerate(args):
        if not arg.startswith("--"):
            continue
        option = arg.split("=", 1)[0]
        assert option in known, f"{doc}: `{line}`: {parser.prog} has no option {option}"
        if option == "--config":
            value = arg.split("=", 1)[1] if "=" in arg else args[i + 1]
            assert (ROOT / value).is_file() or (PACKAGED_CONFIGS / Path(value).name).is_file() \
                or not value.startswith("configs/"), f"{doc}: `{line}`: no config file {value}"


def linked_files() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+:|#", target):
                out.append((doc.relative_to(ROOT).as_posix(), target.split("#")[0]))
        out += [(doc.relative_to(ROOT).as_posix(), "/" + path) for path in REPO_PATH.findall(text)]
    return out


@pytest.mark.parametrize("doc, target", linked_files())
def test_every_file_a_doc_links_to_exists(doc, target):
    path = ROOT / target.lstrip("/") if target.startswith("/") else (ROOT / doc).parent / target
    assert path.exists(), f"{doc} links to {target}, which does not exist"


def all_options(parser) -> set[str]:
    found = {s for action in parser._actions for s in action.option_strings}
    if parser._subcommands_action is not None:
        for sub in parser._subcommands_action._name_parser_map.values():
            found |= all_options(sub)
    return found


REPO_FILES = {p.name for p in ROOT.rglob("*.md") if ".git" not in p.parts}
OTHER_PROGRAMS = {"--write_json": "OpenPose", "--ntasks-per-node": "SLURM", "--nodes": "SLURM"}


def test_every_option_the_docs_name_exists(parser):
    """An option named on its own in running text (`--selection.folds`) is one of hiddenemo's, or of
    the benchmark script its paragraph names; and every `*.md` named is a file here (not in a
    folder the reader does not have)."""
    benchmarks = " ".join(p.read_text() for p in (ROOT / "benchmarks").glob("*.py"))
    known = all_options(parser)
    wrong, missing = [], []
    for doc in DOCS:
        text = doc.read_text()
        for paragraph in text.split("\n\n"):
            for span, star in re.findall(r"`(--[\w.-]+)(\*?)", paragraph):
                span = _keyword_options([span])[0]
                ours = span in known or (star and any(k.startswith(span) for k in known))
                benchmark = "benchmarks/" in paragraph and f'"{span}"' in benchmarks   # the script's own
                if not (ours or benchmark or span in OTHER_PROGRAMS):
                    wrong.append(f"{doc.name}: {span}")
        for name in set(re.findall(r"(?<![\w<>])([A-Za-z][\w-]*\.md)\b", text)):
            if name not in REPO_FILES:
                missing.append(f"{doc.name}: {name}")
    assert not wrong, f"options the CLI does not have: {wrong}"
    assert not missing, f"documents that are not in the repository: {missing}"
