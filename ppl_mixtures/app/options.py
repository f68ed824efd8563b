"""Engine options as the CLI sees them, read from the engine registry.

Each engine's valid options, their types, defaults and one-line help come from its
``Engine.options`` dataclass (fields, types, defaults, ``metadata["help"]``); an engine
without one falls back to its ``fit`` function's keyword-only parameters (type and
default from the signature, help from the numpydoc ``Parameters`` section). The help
text of ``fit``, ``compare`` and ``engines`` is generated from here, so it names exactly
the engines and options this installation registers.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ppl_mixtures.app.errors import UsageError

__all__ = [
    "OptionDoc",
    "accepted_options",
    "check_known_options",
    "engine_help",
    "engine_options",
    "option_docs",
]


@dataclass(frozen=True)
class OptionDoc:
    """One engine option: its name, type (as written in the code), default and help."""

    name: str
    type: str
    default: str
    help: str


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "?"
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or str(annotation)


def _field_default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return repr(field.default_factory())
    return "(required)"


#: A numpydoc parameter line, ``name[, other] : type`` at the section's indentation.
_PARAM_LINE = re.compile(r"^(?P<indent>\s*)(?P<names>\w+(?:\s*,\s*\w+)*)\s*:\s*(?P<type>.*)$")


def _docstring_help(func: Any) -> dict[str, tuple[str, str]]:
    """{parameter: (its type, its description's first sentence)} from a numpydoc
    ``Parameters`` section."""
    doc = inspect.getdoc(func) or ""
    section = doc.split("Parameters\n----------\n", 1)[-1] if "Parameters\n---" in doc else ""
    section = re.split(r"\n\n?\w[\w ]*\n-{3,}\n", section, maxsplit=1)[0]
    types: dict[str, str] = {}
    found: dict[str, str] = {}
    names: list[str] = []
    for line in section.splitlines():
        match = _PARAM_LINE.match(line)
        if match and not match["indent"]:
            names = [n.strip() for n in match["names"].split(",")]
            for name in names:
                types[name], found[name] = match["type"].strip(), ""
        elif names and line.strip():
            for name in names:
                found[name] = f"{found[name]} {line.strip()}".strip()
    first = {
        name: re.split(r"(?<=\.)\s+(?=[A-Z(`])", text, maxsplit=1)[0]
        for name, text in found.items()
    }
    return {name: (types[name], first[name]) for name in found}


def option_docs(engine: Any) -> list[OptionDoc] | None:
    """The options ``engine`` accepts, in declaration order (None: it takes any keyword)."""
    if engine.options is not None and dataclasses.is_dataclass(engine.options):
        return [
            OptionDoc(
                f.name, _type_name(f.type), _field_default(f), str(f.metadata.get("help", ""))
            )
            for f in dataclasses.fields(engine.options)
            if f.init
        ]
    params = inspect.signature(engine.fit).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    documented = _docstring_help(engine.fit)
    docs = []
    for p in params:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        doc_type, doc_help = documented.get(p.name, ("", ""))
        # the docstring's {"a", "b"} lists the choices a plain `str` annotation hides
        kind = doc_type if doc_type.startswith("{") else _type_name(p.annotation)
        default = "(required)" if p.default is inspect.Parameter.empty else repr(p.default)
        docs.append(OptionDoc(p.name, kind, default, doc_help))
    return docs


def option_defaults(engine: Any) -> dict[str, Any]:
    """{option: its default} for the options ``engine`` declares with a default."""
    if engine.options is not None and dataclasses.is_dataclass(engine.options):
        defaults = {}
        for f in dataclasses.fields(engine.options):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
        return defaults
    params = inspect.signature(engine.fit).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not p.empty
    }


def accepted_options(engine: Any) -> set[str] | None:
    """The option names ``engine`` accepts (None when it takes any keyword)."""
    docs = option_docs(engine)
    return None if docs is None else {doc.name for doc in docs}


def engine_options(
    engine: Any, base: Mapping[str, Any], requested: Mapping[str, Any], strict: bool
) -> dict[str, Any]:
    """``base`` settings updated by the user's ``requested`` options, with
    ``progressbar=False`` where the engine has one (the CLI shows its own progress line);
    non-strict drops the options the engine does not accept."""
    accepted = accepted_options(engine)
    options = {**base, **requested}
    if accepted is not None:
        if "progressbar" in accepted:
            options["progressbar"] = False
        if not strict:
            options = {k: v for k, v in options.items() if k in accepted}
    return options


def check_known_options(
    names: Sequence[str], requested: Mapping[str, Any], flags: Mapping[str, str]
) -> None:
    """Refuse an option that none of the engines ``names`` accepts, listing the valid ones
    (``flags``: the dedicated flag of an option name; the others came from ``--option``).

    An option accepted by some of them is kept for those (the others never see it).
    """
    from ppl_mixtures.inference.registry import get_engine

    valid: set[str] = set()
    for name in names:
        accepted = accepted_options(get_engine(name))
        if accepted is None:  # an engine taking **options accepts anything
            return
        valid |= accepted
    unknown = [key for key in requested if key not in valid]
    if unknown:
        given = ", ".join(flags.get(k, f"--option {k}") for k in unknown)
        raise UsageError(
            f"{given}: expected an option that at least one of the selected "
            f"engines ({', '.join(names)}) accepts, got "
            f"{', '.join(map(repr, unknown))}, which none of them accepts. "
            f"Valid options: {', '.join(sorted(valid))}."
        )


def _family(engine: Any) -> str:
    return engine.family + (", scalable" if engine.scalable else "")


def engine_help(width: int = 90) -> str:
    """Every registered engine with its family and summary, and each of its options with
    type, default and help (``ppl-mixtures engines``, and the end of ``fit --help`` and
    ``compare --help``)."""
    from ppl_mixtures.inference.registry import available_engines

    lines = []
    for name, engine in available_engines().items():
        lines += textwrap.wrap(
            f"{name} [{_family(engine)}]: {engine.summary}",
            initial_indent="  ",
            subsequent_indent="      ",
            width=width,
            break_on_hyphens=False,
        )
        docs = option_docs(engine)
        if docs is None:
            lines.append("      options: any keyword (its fit takes **options)")
            continue
        for doc in docs:
            text = f"{doc.name}: {doc.type} = {doc.default}" + (f"  {doc.help}" if doc.help else "")
            lines += textwrap.wrap(
                text,
                initial_indent="      ",
                subsequent_indent="          ",
                width=width,
                break_on_hyphens=False,
            )
    return "\n".join(lines)
