"""`takes(Config)`: a command whose options are a config dataclass's fields, as they are.

The command function declares only its own parameters (work, run, ...) and one `config: Config`;
the decorator gives it a signature with every field of `Config` beside them (defaults from the
dataclass) and adds the fields' attribute docstrings to its `Args:`, so `--help` documents each
option from the one place it is defined and nothing is copied by hand. jsonargparse reads the
signature; the function is called with the fields gathered back into one `Config`.
"""
from __future__ import annotations

import functools
import inspect
import typing
from dataclasses import fields

import docstring_parser


def takes(config_class: type):
    def wrap(command):
        own = [p for p in inspect.signature(command).parameters.values() if p.name != "config"]
        defaults, types = config_class(), typing.get_type_hints(config_class)    # real types, not strings
        options = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, f.name),
                                     annotation=types[f.name]) for f in fields(config_class)]

        @functools.wraps(command)
        def with_config(*args, **kwargs):
            values = {f.name: kwargs.pop(f.name) for f in fields(config_class) if f.name in kwargs}
            return command(*args, **kwargs, config=config_class(**values))

        with_config.__signature__ = inspect.Signature(own + options)
        with_config.__doc__ = _with_field_docs(command.__doc__ or "", config_class)
        return with_config
    return wrap


def _with_field_docs(doc: str, config_class: type) -> str:
    """`doc` (whose last section is `Args:`) with one `name: description` line per field appended."""
    described = {p.arg_name: " ".join(p.description.split())
                 for p in docstring_parser.parse_from_object(config_class).params if p.description}
    lines = [f"    {f.name}: {described.get(f.name, '')}".rstrip() for f in fields(config_class)]
    return inspect.cleandoc(doc).rstrip() + "\n" + "\n".join(lines) + "\n"
