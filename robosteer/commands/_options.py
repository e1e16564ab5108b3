"""Command-line options made from a config dataclass: each field is a ``--field-name`` flag.

The dataclass is the one place that states an option: its name, type, default and help (the attribute docstring
under the field). :func:`config_options` gives a command function a ``--config FILE`` option (YAML or JSON of field
values; flags given on the command line win over the file) and, registered with ``cls=ConfigCommand``, a flag per
field: added when that command parses or shows its help, so the config's package is imported only then. The command
receives the resolved values as ``options`` (:class:`ConfigOptions`), builds its config with ``options.build(...)``
and saves it beside its outputs with ``options.save(config, out)`` (``OUT/options.json``, which ``--config`` reads).

Types: ``int``, ``float``, ``str``, ``bool`` (``--x/--no-x``), ``X | None`` and ``tuple[X, ...]`` (a comma-separated
list on the command line, a list or a comma-separated string in the file). Other fields need a :class:`Flag` with
``parse`` or must be hidden.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import json
import re
import textwrap
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer
from typer.core import TyperCommand

from robosteer.errors import RobosteerError
from robosteer.files import atomic_write_text

SAVED_NAME = "options.json"
"""The resolved options a command saved beside its outputs; ``--config`` reads it back to repeat the run."""
_CONFIG_PARAM = "config_file"
_GIVEN = ("COMMANDLINE", "ENVIRONMENT")
"""Parameter sources of a value the user gave (the others are defaults)."""
_CONTEXT_PARAM = "config_context"
_SCALARS = (int, float, str, bool)
_META = "robosteer.config_values"


@dataclass(frozen=True)
class Flag:
    """How one field appears on a command line, where it differs from what the field says."""

    name: str | None = None
    """The flag, e.g. ``--videos`` (default: ``--`` + the field name with dashes)."""
    help: str | None = None
    """Help text (default: the field's attribute docstring)."""
    choices: tuple[str, ...] = ()
    """Allowed values: named in the help, and checked for the flag and the file."""
    parse: Callable[[str], object] | None = None
    """Turns the flag's text into the field value (the flag then takes a string and shows no default); a mapping in
    the config file is parsed as ``name=value,...`` text."""


@dataclass(frozen=True)
class _Option:
    """One field as a command-line option."""

    field: str
    flag: str
    kind: type
    """The element type: int, float, str or bool."""
    optional: bool
    many: bool
    """A tuple field: a comma-separated list."""
    length: int | None
    """The fixed length of a tuple field (None: any)."""
    default: object
    help: str
    parse: Callable[[str], object] | None
    choices: tuple[str, ...]


# -- reading a dataclass --------------------------------------------------------------------------------------------
@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstring of each field of ``cls`` (and its dataclass bases), as one plain line."""
    docs = {}
    for klass in reversed([k for k in cls.__mro__ if dataclasses.is_dataclass(k)]):
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, after in zip(body, body[1:], strict=False):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                    docs[node.target.id] = plain_help(str(after.value.value))
    return docs


def plain_help(doc: str) -> str:
    """A docstring as one line of help: ``code`` and :role:`name` lose their markup."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", doc)
    return " ".join(text.replace("``", "").split())


def _element_type(hint) -> tuple[type | None, bool, bool, int | None]:
    """``(element type, optional, many, length)`` of a field annotation; element None when unsupported. ``many``:
    a tuple of one type (``length`` is its fixed length, None for ``tuple[X, ...]``)."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        rest = [a for a in args if a is not type(None)]
        hint = rest[0] if len(rest) == 1 else None
    items = typing.get_args(hint) if typing.get_origin(hint) is tuple else ()
    many = bool(items) and (items[1:] == (...,) or len(set(items)) == 1)
    if many:
        hint = items[0]
    length = len(items) if many and ... not in items else None
    return (hint if hint in _SCALARS else None), optional, many, length


def _field_default(field: dataclasses.Field) -> object:
    """The field's default value (a fresh one from its factory; None when it has none)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _option(cls: type, field: dataclasses.Field, hint, flag: Flag) -> _Option:
    """The field as an option, with the command's ``flag`` overrides."""
    kind, optional, many, length = _element_type(hint)
    if kind is None and flag.parse is None:
        raise TypeError(f"{cls.__name__}.{field.name}: no command-line type for {hint}; hide it or give a parse")
    text = flag.help or field_docs(cls).get(field.name, "")
    if flag.choices:
        text = f"{text} One of: {', '.join(flag.choices)}."
    return _Option(
        field=field.name,
        flag=flag.name or "--" + field.name.replace("_", "-"),
        kind=str if flag.parse else kind,
        optional=optional or flag.parse is not None,
        many=many and flag.parse is None,
        length=length,
        default=None if flag.parse else _field_default(field),
        help=text,
        parse=flag.parse,
        choices=flag.choices,
    )


@functools.cache
def _options(cls: type, flags: tuple[tuple[str, Flag], ...], hidden: frozenset[str]) -> tuple[_Option, ...]:
    """Every field of ``cls`` but ``hidden`` (and non-init fields) as an option, in field order."""
    hints = typing.get_type_hints(cls)
    overrides = dict(flags)
    unknown = (set(overrides) | hidden) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    return tuple(
        _option(cls, f, hints[f.name], overrides.get(f.name, Flag()))
        for f in dataclasses.fields(cls)
        if f.name not in hidden and f.init
    )


# -- values ---------------------------------------------------------------------------------------------------------
def _scalar(kind: type, value: object) -> object:
    """``value`` as ``kind``; ValueError when it is not one (a bool is no number, an int is a float, and a number
    may be written as a string: YAML reads ``1e-4`` as one)."""
    if kind in (int, float) and isinstance(value, str):
        return kind(value)
    if isinstance(value, bool) != (kind is bool):
        raise ValueError
    if kind is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, kind):
        raise ValueError
    return value


def _split(option: _Option, text: str) -> tuple:
    """A comma-separated command-line list as the field's tuple."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    try:
        if option.length is not None and len(parts) != option.length:
            raise ValueError
        return tuple(option.kind(part) for part in parts)
    except ValueError:
        count = f"{option.length} " if option.length else ""
        raise RobosteerError(
            f"{option.flag} {text!r}: give {count}{option.kind.__name__} values, comma separated, e.g. {_shown(option)}"
        ) from None


def _from_command_line(option: _Option, value: object) -> object:
    """A flag's value as the field value (lists split, ``parse`` applied)."""
    if value is None:
        return None
    if option.parse is not None:
        return option.parse(value)
    return _split(option, value) if option.many else value


def _from_file(option: _Option, value: object, path: Path) -> object:
    """A value read from a config file, checked against the field's type."""
    try:
        if value is None and option.optional:
            return None
        if option.parse is not None and isinstance(value, dict):  # NAME: VALUE pairs, read as the flag's text
            return option.parse(",".join(f"{name}={item}" for name, item in value.items()))
        if option.parse is not None:
            return option.parse(value) if isinstance(value, str) else value
        if option.many and isinstance(value, str):
            return _split(option, value)
        if option.many:
            if not isinstance(value, list | tuple) or option.length not in (None, len(value)):
                raise ValueError
            return tuple(_scalar(option.kind, item) for item in value)
        return _scalar(option.kind, value)
    except ValueError:
        want = f"a list of {option.kind.__name__}" if option.many else option.kind.__name__
        raise RobosteerError(
            f"{path}: {option.field}: {value!r} is not {want}{' or null' if option.optional else ''}; fix the value"
        ) from None


def _check_choices(option: _Option, value: object) -> None:
    """Refuse a value (or an item of a list) that is not one of the option's choices."""
    for item in value if option.many else (value,):
        if item is not None and item not in option.choices:
            raise RobosteerError(f"{option.flag} {item!r}: use one of {', '.join(option.choices)}")


def read_config_file(path: Path, options: tuple[_Option, ...], what: str = "config") -> dict[str, object]:
    """The field values in a YAML or JSON file, checked: known fields (dashes or underscores), right types."""
    path = Path(path)
    if not path.is_file():
        raise RobosteerError(f"no {what} file at {path}; give a YAML or JSON file of field values")
    try:
        import yaml

        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except Exception as err:  # yaml and json raise different types; both mean a bad file
        raise RobosteerError(f"{path} is not valid {path.suffix[1:].upper() or 'YAML'} ({err}); fix the file") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise RobosteerError(f"{path} must hold a mapping of {what} fields, e.g. 'steps: 100'")
    by_name = {o.field: o for o in options}
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in by_name:
            raise RobosteerError(
                f"{path}: unknown {what} field {key!r}; remove it or use one of {', '.join(sorted(by_name))}"
            )
        values[name] = _from_file(by_name[name], value, path)
    return values


@dataclass(frozen=True)
class ConfigOptions:
    """The field values a command was given, from ``--config FILE`` and its flags (flags win)."""

    cls: type
    values: dict[str, object]
    """Fields set by the file or a flag; the others keep the dataclass default."""
    fields: tuple[str, ...]
    """The fields that are options (what :meth:`save` writes and ``--config`` reads)."""

    def __getitem__(self, name: str) -> object:
        """A field's value: given, or the dataclass default."""
        if name in self.values:
            return self.values[name]
        return _field_default({f.name: f for f in dataclasses.fields(self.cls)}[name])

    def build(self, **extra) -> object:
        """The config: the given values, plus ``extra`` fields the command computed itself."""
        return self.cls(**{**self.values, **extra})

    def save(self, config: object, out: Path) -> Path:
        """Write the option fields of ``config`` to ``out/options.json`` (atomically; a path as its text);
        ``--config`` reads it back."""
        values = dataclasses.asdict(config)
        data = {name: str(values[name]) if isinstance(values[name], Path) else values[name] for name in self.fields}
        return atomic_write_text(Path(out) / SAVED_NAME, json.dumps(data, indent=2) + "\n")


# -- the command ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    """A config dataclass (``"module:Class"``, imported on first use) and how its fields appear as flags."""

    config: str | type
    flags: tuple[tuple[str, Flag], ...]
    hidden: frozenset[str]

    def cls(self) -> type:
        """The dataclass (imported now when given by name)."""
        if isinstance(self.config, type):
            return self.config
        module, _, name = self.config.partition(":")
        return getattr(importlib.import_module(module), name)

    def options(self) -> tuple[_Option, ...]:
        """Its fields as options."""
        return _options(self.cls(), self.flags, self.hidden)


def _shown(option: _Option) -> object:
    """The default as the help shows it (a list comma-separated)."""
    if option.many and option.default is not None:
        return ",".join(map(str, option.default))
    return option.default


def _parameter(option: _Option) -> inspect.Parameter:
    """The option as a signature parameter with a ``typer.Option`` default (a bool as ``--x/--no-x``)."""
    decl = f"{option.flag}/--no-{option.flag[2:]}" if option.kind is bool else option.flag
    annotation = str if option.many else option.kind
    return inspect.Parameter(
        option.field,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(_shown(option), decl, help=option.help, show_default=option.default is not None),
        annotation=annotation | None if option.optional or option.many else annotation,
    )


def _typer_params(options: tuple[_Option, ...]) -> list:
    """The options as typer builds them from a signature (one command of a throwaway app)."""

    def fields(**kwargs) -> None:
        """The config fields."""

    parameters = [_parameter(o) for o in options]
    fields.__signature__ = inspect.Signature(parameters)
    fields.__annotations__ = {p.name: p.annotation for p in parameters}
    app = typer.Typer(add_completion=False)
    app.command()(fields)
    return list(typer.main.get_command(app).params)


class ConfigCommand(TyperCommand):
    """A command whose config fields are flags, added when the command parses or shows its help (so that
    ``robosteer --help`` and the other commands never import the config's package)."""

    def get_params(self, ctx: typer.Context) -> list:
        """The command's own parameters, then (added once) the config fields."""
        spec = self.callback.__config_spec__
        if not getattr(self, "_fields_added", False):
            clash = {p.name for p in self.params} & {o.field for o in spec.options()}
            if clash:
                raise TypeError(f"{self.name}: parameters {sorted(clash)} are also config fields")
            self.params.extend(_typer_params(spec.options()))
            self._fields_added = True
        return super().get_params(ctx)

    def invoke(self, ctx: typer.Context) -> object:
        """Hand the config fields given on the command line to the command (through ``ctx.meta``)."""
        given = {}
        for option in self.callback.__config_spec__.options():
            value = ctx.params.pop(option.field, None)
            if ctx.get_parameter_source(option.field).name in _GIVEN:
                given[option.field] = value
        ctx.meta[_META] = given
        return super().invoke(ctx)


def _explicit_parameters(func: Callable) -> list[inspect.Parameter]:
    """The command's own parameters (all but ``options``), with their annotations resolved."""
    hints = typing.get_type_hints(func)
    return [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation))
        for p in inspect.signature(func).parameters.values()
        if p.name != "options"
    ]


def resolve(spec: _Spec, path: Path | None, given: dict[str, object], what: str) -> ConfigOptions:
    """The field values of a command: from the file at ``path``, then the flags ``given`` on the command line."""
    options = spec.options()
    values = read_config_file(path, options, what) if path is not None else {}
    for option in options:
        if option.field in given:
            values[option.field] = _from_command_line(option, given[option.field])
        if option.choices and option.field in values:
            _check_choices(option, values[option.field])
    return ConfigOptions(spec.cls(), values, tuple(o.field for o in options))


def config_options(
    config: str | type,
    *,
    flags: dict[str, Flag] | None = None,
    hidden: tuple[str, ...] = (),
    config_flag: str = "--config",
    config_help: str | None = None,
) -> Callable[[Callable], Callable]:
    """Decorate a command taking ``options: ConfigOptions``: every field of the dataclass ``config`` but ``hidden``
    becomes a flag (``flags`` renames or re-words one), plus ``config_flag FILE``. ``config`` is the class, or
    ``"module:Class"`` to import it only when the command runs or shows its help. Register the result with
    ``app.command(name, cls=ConfigCommand)``."""
    spec = _Spec(config, tuple(sorted((flags or {}).items())), frozenset(hidden))
    help_text = config_help or (
        f"YAML or JSON file of option values (field names, - or _); flags given here override it. "
        f"A run's {SAVED_NAME} is such a file."
    )

    def decorate(func: Callable) -> Callable:
        config_param = inspect.Parameter(
            _CONFIG_PARAM,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(None, config_flag, help=help_text),
            annotation=Path | None,
        )
        context_param = inspect.Parameter(_CONTEXT_PARAM, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)

        @functools.wraps(func)
        def command(**kwargs):
            """The command with its resolved options."""
            given = kwargs.pop(_CONTEXT_PARAM).meta.get(_META, {})
            options = resolve(spec, kwargs.pop(_CONFIG_PARAM), given, config_flag.lstrip("-"))
            return func(**kwargs, options=options)

        parameters = [context_param, *_explicit_parameters(func), config_param]
        command.__signature__ = inspect.Signature(parameters)
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        command.__config_spec__ = spec
        return command

    return decorate
