"""Versioned prompt files under `hiddenemo/prompts/`: the version is the file name, so editing a
prompt means adding `<name>_v2.md`, and the cache (keyed by prompt version) re-asks exactly the
videos answered with the old one. Templates use `$name` placeholders (string.Template) so that
JSON braces in a prompt need no escaping."""
from __future__ import annotations

from importlib import resources
from string import Template

from hiddenemo.errors import UserError
from hiddenemo.teacher.schema import VlmAnswer

DEFAULT_PROMPT = "cot_reflection_v1"


def _dir():
    return resources.files("hiddenemo") / "prompts"


def available() -> list[str]:
    return sorted(p.name.rsplit(".", 1)[0] for p in _dir().iterdir()
                  if p.name.endswith((".md", ".txt")))


def render(version: str, classes: list[str], positive: str, context: str = "") -> str:
    """The prompt `version` with the dataset's class names filled in.

    Args:
        version: Prompt file name without suffix (e.g. `cot_reflection_v1`).
        classes: The dataset's class names, `[negative, positive]` for a binary task.
        positive: The positive class name.
        context: An optional sentence about the clip (duration, which part of the video).
    """
    for suffix in (".md", ".txt"):
        path = _dir() / f"{version}{suffix}"
        if path.is_file():
            break
    else:
        raise UserError(f"prompt {version!r} not found; available prompts: {available()}")
    negative = next((c for c in classes if c != positive), "not " + positive)
    names = ", ".join(f'"{c}"' for c in classes)
    return Template(path.read_text(encoding="utf-8")).substitute(
        classes=names, positive=positive, negative=negative, context=context).strip() + "\n"


def answer_schema() -> dict:
    """The JSON schema of `VlmAnswer`, inlined (no $ref) and closed, as strict JSON-schema modes want."""
    schema = VlmAnswer.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].split("/")[-1]])
            node = {k: inline(v) for k, v in node.items() if k not in ("title", "default")}
            if node.get("type") == "object":
                node["additionalProperties"] = False
                node["required"] = list(node.get("properties", {}))
            return node
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)
