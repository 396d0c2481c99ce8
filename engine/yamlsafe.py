"""Strict, safe YAML: only plain data, positions kept, traps refused.

- Loads with PyYAML's safe loader (no Python objects are ever constructed).
- Mappings and lists remember where each entry is, so later checks can say
  ``path:line:col``.
- Duplicate keys are errors (PyYAML silently keeps the last one).
- YAML 1.1 traps are errors instead of surprises: ``no``/``yes``/``on``/``off``
  read as booleans, ``010`` read as octal 8, ``1:30`` read as 90. Dates stay text.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from .errors import Location, YamlError, display_path, shorten

try:  # the C loader is several times faster; same semantics
    _Base = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Base = yaml.SafeLoader

# Why: a catalog or formula file larger than this is certainly a mistake.
MAX_FILE_BYTES = 5_000_000
# Why: aliases (*name) let a 1 kB file stand for billions of values (the "billion laughs");
# the largest bundled file has about 1,500 values once aliases are expanded.
MAX_VALUES = 200_000
# Why: the bundled files nest 6 levels; deeper nesting is machine-made, and the loader recurses.
MAX_DEPTH = 64
# Why: Python refuses to read integers of more than 4,300 digits; no fact needs more than a few dozen.
MAX_INT_DIGITS = 100


class Source:
    """A file's name and lines, shared by every node loaded from it."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.lines = text.splitlines()

    def location(self, line0: int, col0: int) -> Location:
        line = self.lines[line0] if 0 <= line0 < len(self.lines) else None
        return Location(self.path, line0 + 1, col0 + 1, line)


class YDict(dict):
    """A mapping that knows where its keys and values are."""

    source: Source
    start: tuple[int, int]
    key_marks: dict
    value_marks: dict
    value_styles: dict

    def where(self, key=None, *, of_key: bool = False) -> Location:
        """Location of a value (default) or of its key; of the mapping itself if key is None."""
        if key is None or key not in self.key_marks:
            return self.source.location(*self.start)
        marks = self.key_marks if of_key else self.value_marks
        return self.source.location(*marks[key])

    def expr_location(self, key) -> tuple[Location, int]:
        """Where a scalar's text starts, and how many quote characters precede it."""
        style = self.value_styles.get(key)
        return self.where(key), 1 if style in ("'", '"') else 0


class YList(list):
    """A sequence that knows where its items are."""

    source: Source
    start: tuple[int, int]
    item_marks: list

    def where(self, index=None) -> Location:
        if index is None or index >= len(self.item_marks):
            return self.source.location(*self.start)
        return self.source.location(*self.item_marks[index])


_OCTAL_OR_ODD_INT = re.compile(r"^[-+]?(0[0-9_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+|.*_.*|.*:.*)$")
_TRUE_FALSE = {"true", "false"}


class _Loader(_Base):
    def __init__(self, stream, source: Source):
        super().__init__(stream)
        self.source = source

    def _error(self, node, message, hint=None, found=None) -> YamlError:
        return YamlError(message, self.source.location(node.start_mark.line, node.start_mark.column),
                         found=found, hint=hint, width=max(1, len(str(node.value))))

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, yaml.MappingNode):  # pragma: no cover - PyYAML guards this
            raise self._error(node, "expected a mapping")
        result = YDict()
        result.source = self.source
        result.start = (node.start_mark.line, node.start_mark.column)
        result.key_marks, result.value_marks, result.value_styles = {}, {}, {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise self._error(key_node, "mapping keys must be plain text")
            if key in result:
                first = result.key_marks[key]
                raise YamlError(
                    f"duplicate key '{key}'",
                    self.source.location(key_node.start_mark.line, key_node.start_mark.column),
                    hint=f"'{key}' is already defined at line {first[0] + 1}; YAML would silently keep only the last one",
                    width=len(str(key)))
            result[key] = self.construct_object(value_node, deep=True)
            result.key_marks[key] = (key_node.start_mark.line, key_node.start_mark.column)
            result.value_marks[key] = (value_node.start_mark.line, value_node.start_mark.column)
            result.value_styles[key] = getattr(value_node, "style", None)
        return result

    def construct_sequence(self, node, deep=False):
        result = YList(self.construct_object(child, deep=True) for child in node.value)
        result.source = self.source
        result.start = (node.start_mark.line, node.start_mark.column)
        result.item_marks = [(c.start_mark.line, c.start_mark.column) for c in node.value]
        return result

    def construct_yaml_map(self, node):
        yield self.construct_mapping(node)

    def construct_yaml_seq(self, node):
        yield self.construct_sequence(node)

    def construct_yaml_bool(self, node):
        if node.value.lower() not in _TRUE_FALSE:
            raise self._error(
                node, f"'{node.value}' is read by YAML 1.1 as the boolean "
                      f"{str(super().construct_yaml_bool(node)).lower()}",
                hint=f"write true or false for a boolean, or quote it ('{node.value}') for text")
        return node.value.lower() == "true"

    def construct_yaml_int(self, node):
        if len(node.value) > MAX_INT_DIGITS:
            raise self._error(node, f"a number of {len(node.value):,} digits", found=shorten(node.value),
                              hint=f"write at most {MAX_INT_DIGITS} digits, or quote it for text")
        if _OCTAL_OR_ODD_INT.match(node.value):
            value = super().construct_yaml_int(node)
            raise self._error(
                node, f"'{node.value}' is read by YAML 1.1 as the number {value}",
                hint=f"write the number without leading zeros, separators or colons, or quote it ('{node.value}') for text")
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        if ":" in node.value or node.value.lower() in (".nan", ".inf", "-.inf", "+.inf"):
            raise self._error(node, f"'{node.value}' is not an ordinary number",
                              hint="write a plain decimal number, or quote it for text")
        return super().construct_yaml_float(node)

    def construct_yaml_timestamp(self, node):  # dates stay text
        return node.value


for _tag, _method in [
    ("tag:yaml.org,2002:map", _Loader.construct_yaml_map),
    ("tag:yaml.org,2002:seq", _Loader.construct_yaml_seq),
    ("tag:yaml.org,2002:bool", _Loader.construct_yaml_bool),
    ("tag:yaml.org,2002:int", _Loader.construct_yaml_int),
    ("tag:yaml.org,2002:float", _Loader.construct_yaml_float),
    ("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp),
]:
    _Loader.add_constructor(_tag, _method)


def _children(node):
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return ()


def _check_size(node, source: Source):
    """Refuse a document whose aliases expand past MAX_VALUES, that nests past MAX_DEPTH, or that
    refers to itself. Linear in the size of the text: each node is sized once, aliases reuse it."""
    sizes, open_, aliased = {}, set(), False
    stack = [(node, 1, False)]
    while stack:
        n, depth, done = stack.pop()
        key = id(n)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(n))
            if sizes[key] > MAX_VALUES:
                what = "its aliases expand" if aliased else "it holds"
                raise YamlError(f"document too large: {what} to more than {MAX_VALUES:,} values",
                                source.location(n.start_mark.line, n.start_mark.column),
                                hint="write the values out once; an alias (*name) may repeat a value, "
                                     "not multiply a document")
            continue
        if key in sizes:
            aliased = True
            continue
        if key in open_:
            raise YamlError("an alias refers to a value that contains it",
                            source.location(n.start_mark.line, n.start_mark.column),
                            hint="remove the recursive alias (*name inside &name)")
        if depth > MAX_DEPTH:
            raise YamlError(f"values nested more than {MAX_DEPTH} levels deep",
                            source.location(n.start_mark.line, n.start_mark.column))
        open_.add(key)
        stack.append((n, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(n))


def loads(text: str, path: str = "<string>"):
    """Parse YAML text strictly. Raises YamlError with the location of the first problem."""
    if len(text) > MAX_FILE_BYTES:
        raise YamlError(f"text is {len(text):,} characters, over the {MAX_FILE_BYTES:,} allowed", Location(path))
    source = Source(path, text)
    loader = _Loader(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, source)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = source.location(mark.line, mark.column) if mark else Location(path)
        what = (exc.problem or "malformed YAML").strip()
        raise YamlError(f"malformed YAML: {what}", where,
                        hint="check indentation, colons and quotes on this line or the one before") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"malformed YAML: {exc}", Location(path)) from None
    finally:
        loader.dispose()


def load(path: str | Path, max_bytes: int = MAX_FILE_BYTES):
    """Read and parse a YAML file strictly; the error names the file as the user wrote it."""
    shown = display_path(path)
    try:
        with open(path, "rb") as f:    # read no more than the limit: the file may be huge
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise YamlError(f"cannot read file: {exc.strerror}", Location(shown)) from None
    if len(raw) > max_bytes:
        raise YamlError(f"file is over the {max_bytes:,} bytes allowed", Location(shown),
                        hint="is this the file you meant?")
    from . import cache

    name = cache.key_of("yaml", [(path, raw)])
    cached = cache.read(name)
    if isinstance(cached, dict) and "lines" in cached:
        try:
            return _from_json(cached["doc"], Source(shown, "\n".join(cached["lines"])))
        except (KeyError, TypeError, ValueError):
            pass    # damaged: parse the file again
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"not UTF-8 text (byte {exc.start})", Location(shown)) from None
    doc = loads(text, shown)
    cache.write(name, {"lines": text.splitlines(), "doc": _to_json(doc)})
    return doc


# -- the cached form: a loaded file as JSON, positions kept (parsing it again is the slow part) --

def _to_json(value):
    if isinstance(value, YDict):
        keys = list(value)
        return {"d": [[k, _to_json(value[k])] for k in keys], "s": value.start,
                "km": [value.key_marks[k] for k in keys], "vm": [value.value_marks[k] for k in keys],
                "st": [value.value_styles[k] for k in keys]}
    if isinstance(value, YList):
        return {"l": [_to_json(v) for v in value], "s": value.start, "im": value.item_marks}
    return value


def _from_json(value, source: Source):
    if not isinstance(value, dict):
        return value
    if "l" in value:
        out = YList(_from_json(v, source) for v in value["l"])
        out.item_marks = [tuple(m) for m in value["im"]]
    else:
        out = YDict((k, _from_json(v, source)) for k, v in value["d"])
        keys = [k for k, _ in value["d"]]
        out.key_marks = {k: tuple(m) for k, m in zip(keys, value["km"])}
        out.value_marks = {k: tuple(m) for k, m in zip(keys, value["vm"])}
        out.value_styles = dict(zip(keys, value["st"]))
    out.source, out.start = source, tuple(value["s"])
    return out
