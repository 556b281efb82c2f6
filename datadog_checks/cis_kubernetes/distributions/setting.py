"""The effective --client-ca-file of one apiserver and where it came from, and the YAML helpers its readers share."""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from .block_yaml import NOT_BLOCK, SCALAR_TAGS, read_block_yaml


@dataclass(frozen=True)
class ClientCaSetting:
    """The effective --client-ca-file of one apiserver and where it comes from."""

    value: str | None  # None: not set
    source: str  # process | config_file | manifest | distribution_default
    distribution: str
    origin: str = ''  # the file the value was read from, for messages
    unjudgeable: str = ''  # why the setting cannot be judged from this node
    no_apiserver: str = ''  # why this process, though it could, runs no kube-apiserver (k3s --disable-apiserver)


# Nesting the C composer of pyyaml's CSafeLoader is given at most: it recurses in C, about 300 bytes of stack a level,
# and a document nested 30,000 deep crashed the interpreter (SIGSEGV) on an 8 MiB stack.
C_COMPOSER_MAX_DEPTH = 1000


def load_yaml(text: str, variant=None):
    """The document, read with the loader the Agent's rtloader picks for its own YAML (CSafeLoader where pyyaml has
    libyaml: DataDog/datadog-agent rtloader/common/stringutils.c at 0698a0a2; rtloader imports yaml as it starts,
    rtloader/three/three.cpp at 0001f855), whose libyaml parser is also what the kubelet's go-yaml was ported from;
    None when it is not YAML or nests absurdly deep.

    A document in plain block style (a kubeadm manifest) is read line by line by block_yaml.py, with the loader's
    own resolvers and constructors (0.23 against 0.40 ms for a kubeadm manifest). A document that may nest deeper
    than C_COMPOSER_MAX_DEPTH is composed in Python instead, which raises RecursionError where C would crash.
    Without libyaml, pyyaml's pure-Python SafeLoader (6.7 ms for a kubeadm manifest here, against 0.40 ms with
    libyaml and _document). `variant`, given the loader class chosen, returns a subclass to read with instead.
    """
    import yaml  # shipped with the Agent, whose rtloader imports it before any check runs (init_stringutils)

    agents_loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    try:
        if variant is None and _builds_trees_as_safe_constructor(agents_loader):
            document = read_block_yaml(text, agents_loader)
            if document is not NOT_BLOCK:
                return document
        shallow = nesting_bound(text) <= C_COMPOSER_MAX_DEPTH
        loader = yaml.CSafeLoader if shallow and yaml.__with_libyaml__ else _python_composer()
        return _document((variant(loader) if variant else loader)(text))
    except (yaml.YAMLError, RecursionError):
        return None
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):  # pyyaml's constructors on bad scalars:
        return None  # `2001-13-01` (ValueError), `!!timestamp x` (AttributeError), `!!bool maybe` (KeyError)


def _document(loader):
    """What `loader` reads, as yaml.load would. A plain tree is built by _tree directly, in about a quarter of the
    time pyyaml's constructor takes (0.08 against 0.33 ms for a kubeadm manifest); anything else is left to it."""
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _builds_trees_as_safe_constructor(type(loader)):
            try:
                return _tree(loader, node, set(), 0)
            except _NotATree:
                pass
        return loader.construct_document(node)
    finally:
        loader.dispose()


class _NotATree(Exception):
    """The document holds what only pyyaml's constructor reads: an aliased collection, a merge key, a tag of its own."""


_STR, _SEQ, _MAP = 'tag:yaml.org,2002:str', 'tag:yaml.org,2002:seq', 'tag:yaml.org,2002:map'
# Deeper documents are left to pyyaml, whose constructor does not recurse: _tree takes up to two frames a level.
_TREE_MAX_DEPTH = 64


def _tree(loader, node, seen: set[int], depth: int):
    """`node` as SafeConstructor constructs it, for a tree of mappings, sequences and scalars; _NotATree otherwise.
    A repeated key's last value wins, and each scalar goes through pyyaml's own constructor for its tag. An aliased
    scalar is constructed at each use: an equal, immutable value. Construction is depth first where pyyaml fills
    nested collections later: of a document with two unconstructible scalars, another may raise first; either makes
    it unreadable to load_yaml (tests/test_yaml_loading.py compares the two)."""
    yaml = sys.modules['yaml']  # imported by load_yaml; a lookup, where an import statement would cost each call more
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _STR:
            return node.value
        if node.tag not in SCALAR_TAGS:
            raise _NotATree
        return loader.yaml_constructors[node.tag](loader, node)
    if depth >= _TREE_MAX_DEPTH or id(node) in seen:  # an alias: pyyaml shares one object, maybe recursive
        raise _NotATree
    seen.add(id(node))
    if node.tag == _SEQ and isinstance(node, yaml.SequenceNode):
        return [_tree(loader, item, seen, depth + 1) for item in node.value]
    if node.tag != _MAP or not isinstance(node, yaml.MappingNode):
        raise _NotATree
    mapping = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):  # a complex key: pyyaml refuses an unhashable one
            raise _NotATree
        key = _tree(loader, key_node, seen, depth + 1)
        mapping[key] = _tree(loader, value_node, seen, depth + 1)
    return mapping


@functools.cache
def _builds_trees_as_safe_constructor(loader: type) -> bool:
    """Whether `loader` constructs strings, sequences and mappings as SafeConstructor does (a variant may not)."""
    from yaml.constructor import SafeConstructor

    methods = ('construct_document', 'construct_object', 'construct_mapping', 'flatten_mapping', 'construct_scalar')
    tags = (_STR, _SEQ, _MAP, *SCALAR_TAGS)
    return all(getattr(loader, name) is getattr(SafeConstructor, name) for name in methods) and all(
        loader.yaml_constructors.get(tag) is SafeConstructor.yaml_constructors[tag] for tag in tags
    )


def nesting_bound(text: str) -> int:
    """At least the depth of any YAML node in `text`: flow collections open with `[` or `{`, and a block collection
    nested in another starts further right on its line, or (a sequence as a mapping's value) at most two levels a
    column. Lines split only at `\n` are at least as long as YAML's lines."""
    return text.count('[') + text.count('{') + 2 * max(map(len, text.split('\n'))) + 2


@functools.cache
def _python_composer():
    """pyyaml's SafeLoader, with libyaml's parser where pyyaml has it."""
    import yaml

    if not yaml.__with_libyaml__:
        return yaml.SafeLoader
    from yaml._yaml import CParser
    from yaml.composer import Composer
    from yaml.constructor import SafeConstructor
    from yaml.resolver import Resolver

    class LibyamlParserSafeLoader(Composer, CParser, SafeConstructor, Resolver):
        def __init__(self, stream):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    return LibyamlParserSafeLoader


def as_mapping(value) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def as_list(value) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]
