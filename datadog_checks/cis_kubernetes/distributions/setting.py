"""The effective --client-ca-file of one apiserver and where it came from, and the YAML helpers its readers share."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass


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


def load_yaml(text: str, variant=None, first_document: bool = False):
    """The document, read with the loader the Agent's rtloader picks for its own YAML (CSafeLoader where pyyaml has
    libyaml: DataDog/datadog-agent rtloader/common/stringutils.c at 0698a0a2; rtloader imports yaml as it starts,
    rtloader/three/three.cpp at 0001f855), whose libyaml parser is also what the kubelet's go-yaml was ported from;
    None when it is not YAML or nests absurdly deep. A document that may nest deeper than C_COMPOSER_MAX_DEPTH is
    composed in Python instead, which raises RecursionError where C would crash. `variant`, given the loader class
    chosen, returns a subclass to read with instead. `first_document`: read the first document and nothing after it,
    as go-yaml v2's Unmarshal does, where a second document otherwise makes the text unreadable.
    """
    import yaml  # shipped with the Agent, whose rtloader imports it before any check runs (init_stringutils)

    try:
        shallow = nesting_bound(text) <= C_COMPOSER_MAX_DEPTH
        loader = yaml.CSafeLoader if shallow and yaml.__with_libyaml__ else _python_composer()
        loader = variant(loader) if variant else loader
        if not first_document:
            return yaml.load(text, Loader=loader)
        reader = loader(text)
        try:
            return reader.get_data()
        finally:
            reader.dispose()
    except (yaml.YAMLError, RecursionError):
        return None
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError):  # pyyaml's constructors on bad scalars:
        return None  # `2001-13-01` (ValueError), `!!timestamp x` (AttributeError), `!!bool maybe` (KeyError)


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
