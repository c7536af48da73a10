"""The train command's model options, derived from the families' config dataclasses (as nanoGPT's configurator
makes every config key a flag): one `--field-name` per field, its type from the annotation, its help from the
comment beside the default. The fields are read from the config's source, so `--help` imports no torch.
A new field in a config, or a new family, is a new flag with no edit here."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import io
import tokenize
from dataclasses import dataclass

from core import families

# --preset is one flag for every family; the image shape and the class count come from the data set's record
SET_ELSEWHERE = ("preset", "image_size", "channels", "num_classes")
TYPES = {"bool": bool, "int": int, "float": float, "str": str}


@dataclass(frozen=True)
class Option:
    name: str  # the config field (the flag is --name-with-dashes)
    type: type  # bool, int, float or str
    help: str
    families: tuple[str, ...]  # the labels of the families whose config has the field


def _source(target) -> tuple[str, str] | None:
    """(source of the module, class name) of a config given as a class or as "module:Class", without importing
    a module that is not imported yet."""
    if isinstance(target, str):
        module, _, name = target.partition(":")
        spec = importlib.util.find_spec(module)
        path = spec.origin if spec else None
    else:
        name, path = target.__name__, inspect.getsourcefile(target)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), name
    except (OSError, TypeError):
        return None


def fields(target) -> list[tuple[str, str, str]]:
    """(name, annotation, comment) of each field of a config dataclass, in order."""
    found = _source(target)
    if found is None:
        return []
    source, name = found
    comments = {tok.start[0]: tok.string.lstrip("# ").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    cls = next((n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == name), None)
    if cls is None:
        return []
    return [(n.target.id, ast.unparse(n.annotation), comments.get(n.end_lineno, ""))
            for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]


def _type(annotation: str) -> type:
    """The flag's type: the first of bool, int, float, str the annotation names ("int | None" -> int)."""
    for part in annotation.replace(" ", "").split("|"):
        if part in TYPES:
            return TYPES[part]
    return str


def options() -> list[Option]:
    """Every config field of the registered families but the ones set elsewhere, each once (in registration
    order); a field several families share is one flag that each of them reads."""
    seen: dict[str, Option] = {}
    for family in families.FAMILIES.values():
        for name, annotation, comment in fields(family.config):
            if name in SET_ELSEWHERE:
                continue
            if name in seen:
                o = seen[name]
                seen[name] = Option(name, o.type, o.help, (*o.families, family.label))
            else:
                seen[name] = Option(name, _type(annotation), comment, (family.label,))
    return list(seen.values())


def help_text(option: Option) -> str:
    text = option.help or option.name.replace("_", " ")
    return f"{', '.join(option.families)}: {text} (default: the model's)".replace("%", "%%")  # argparse formats help
