"""YAML documents written the plain way configuration files usually are, read line by line without libyaml.

A kubeadm manifest is such a document: block mappings and sequences, one scalar to a line, plain or quoted without
escapes. libyaml's composer makes a node of each scalar through Python calls for its tag and its node; reading the
lines directly takes less time (0.23 against 0.40 ms for a kubeadm manifest, best of five here). Every line must be
of a shape whose reading this module knows exactly. Anything else (a flow collection other than `{}` and `[]`, an
anchor, an alias, a tag, a block or multi-line scalar, an escape, a complex key, a tab, a character outside
printable ASCII, a document marker, an indentation libyaml would refuse) makes the document NOT_BLOCK, and load_yaml
reads it with pyyaml. tests/test_block_yaml.py compares the two on every document both read, and
tests/test_manifest_oracle.py compares the check's readings of hundreds of such manifests with the kubelet's.
"""

from __future__ import annotations

import re
import sys

NOT_BLOCK = object()  # the document holds a line this module does not read: pyyaml must

# A plain scalar on one line: no indicator first (`-` only before a non-space), no `: ` and no ` #` inside, no space
# or `:` last. Quoted scalars without escapes (`''` is a quote in single quotes), and the two empty flow collections.
_PLAIN = r'(?:[A-Za-z0-9_./~+$(]|-(?=[^ ]))(?:[^ :]+|:(?=[^ ])| +(?=[^ #]))*+'
_SCALAR = rf"""(?:({_PLAIN})|'((?:[^']|'')*+)'|"([^"\\]*+)"|(\{{\}}|\[\]))"""
# A line with content: indentation, a sequence entry's dash, then a plain key (shorter than libyaml's 1,024-character
# bound on a simple key) with its scalar or none, or a scalar alone; a comment after a space.
_LINE = re.compile(rf'( *)(- +)?(?:([A-Za-z0-9_][A-Za-z0-9_./-]{{0,999}}):(?: +{_SCALAR})?|{_SCALAR}) *(?: #.*)?')
# Scalar tags whose safe constructor reads the scalar alone (SafeConstructor.construct_yaml_*): called as pyyaml calls
# them, here and by setting._tree. A merge (`<<`) or value (`=`) key, `!!set`, `!!omap`, `!!pairs` and other tags are
# left to pyyaml.
SCALAR_TAGS = frozenset(f'tag:yaml.org,2002:{name}' for name in ('null', 'bool', 'int', 'float', 'binary', 'timestamp'))
_BLOCK_MAX_DEPTH = 64  # nested values open at once; deeper documents are left to pyyaml, as setting._tree leaves them


class _NotBlock(Exception):
    pass


def read_block_yaml(text: str, loader: type):
    """The document as `loader` (a safe loader, resolving and constructing scalars as SafeConstructor does) reads it,
    or NOT_BLOCK. A scalar the constructor cannot read raises what it raises (ValueError for `2001-13-01`)."""
    if not (text.isascii() and text.replace('\n', ' ').isprintable()) or loader.yaml_path_resolvers:
        return NOT_BLOCK
    try:
        return _read(text, _Scalars(loader))
    except _NotBlock:
        return NOT_BLOCK


def _read(text: str, scalars: _Scalars):
    # Open collections, outermost first: [column, the dict or list, the key awaiting a nested value, whether it is a
    # sequence at its mapping's own column (`key:` then `- item` below it, as kubeadm writes)].
    stack: list[list] = []
    fullmatch, values, plain_value, scalar = _LINE.fullmatch, scalars.values, scalars.plain, scalars.scalar
    for line in text.split('\n'):
        content = line.lstrip(' ')
        if not content or content[0] == '#':
            continue
        match = fullmatch(line)
        if match is None:
            raise _NotBlock
        # The key's scalar (plain, single-quoted, double-quoted, flow) or an entry's (the same four, e_ first).
        indent, dash, key, plain, single, double, flow, e_plain, e_single, e_double, e_flow = match.groups()
        column = len(indent)
        if not stack:  # the root: a mapping
            if dash or key is None:
                raise _NotBlock
            stack.append([column, {}, None, False])
        top = stack[-1]
        if top[2] is not None and (column > top[0] or (column == top[0] and dash)):
            nested: dict | list = [] if dash else {}  # the value of the key awaiting one
            top[1][top[2]] = nested
            top[2] = None
            top = [column, nested, None, column == top[0]]
            stack.append(top)
            if len(stack) > _BLOCK_MAX_DEPTH:
                raise _NotBlock
        else:
            while top[0] > column or (top[0] == column and top[3] and not dash):
                stack.pop()  # a key still awaiting its value keeps None, as an empty value reads
                if not stack:
                    raise _NotBlock
                top = stack[-1]
            if top[0] != column or (type(top[1]) is list) != bool(dash):
                raise _NotBlock  # an indentation no open collection has, or an entry where the other kind is open
            top[2] = None
        if dash:
            if key is None:
                if e_plain is not None:
                    top[1].append(values[e_plain] if e_plain in values else plain_value(e_plain))
                else:
                    top[1].append(scalar(e_single, e_double, e_flow))
                continue
            mapping: dict = {}  # `- key: ...` opens a mapping at the key's column
            top[1].append(mapping)
            top = [column + len(dash), mapping, None, False]
            stack.append(top)  # deeper nesting opens a nested value next, where the depth is bounded
        elif key is None:
            raise _NotBlock  # a scalar where a mapping's key must be
        if type(values.get(key) or plain_value(key)) is not str:
            raise _NotBlock  # a key pyyaml would read as a number, boolean, date or null
        if plain is not None:
            top[1][key] = values[plain] if plain in values else plain_value(plain)
        elif single is None and double is None and flow is None:
            top[1][key] = None
            top[2] = key
        else:
            top[1][key] = scalar(single, double, flow)
    if not stack:
        raise _NotBlock
    return stack[0][1]


class _Scalars:
    """Scalars as `loader` resolves and constructs them."""

    def __init__(self, loader: type) -> None:
        self._resolvers = loader.yaml_implicit_resolvers
        self._constructors = loader.yaml_constructors
        self._constructor = None
        self.values: dict[str, object] = {}  # plain scalar -> its value (immutable), for the plain scalars that repeat

    @staticmethod
    def scalar(single: str | None, double: str | None, flow: str | None):
        """A quoted scalar's value, or an empty flow collection."""
        if single is not None:
            return single.replace("''", "'")
        if double is not None:
            return double
        return {} if flow == '{}' else []

    def plain(self, text: str):
        """A plain scalar's value: its tag as BaseResolver.resolve gives it, constructed as SafeConstructor does."""
        resolvers = self._resolvers
        for tag, regexp in resolvers.get(text[0], []) + resolvers.get(None, []):
            if regexp.match(text):
                value = self._construct(tag, text)
                break
        else:
            value = text
        self.values[text] = value
        return value

    def _construct(self, tag: str, text: str):
        if tag not in SCALAR_TAGS:
            raise _NotBlock
        yaml = sys.modules['yaml']  # imported by load_yaml
        if self._constructor is None:
            self._constructor = yaml.constructor.SafeConstructor()
        return self._constructors[tag](self._constructor, yaml.ScalarNode(tag, text))
