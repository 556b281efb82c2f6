"""Documents in plain block style read line by line (distributions/block_yaml.py) exactly as pyyaml's CSafeLoader reads
them, and every other document left to pyyaml.

Each test reads a document both ways. Where the block reader reads it, the two readings must be the same objects
(compared by repr: types, order and values alike), and a document pyyaml cannot read (a date that is no date) must be
unreadable to both. The documents: hand-picked edges of each line shape, every edge document of
tests/test_yaml_loading.py, documents pyyaml's own dumper writes in block style, and those documents with one line
changed at random (its indentation, its scalar, a comment or a dash), so that both readings meet near every boundary
of what the block reader takes.
"""

from __future__ import annotations

import random
import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from datadog_checks.cis_kubernetes.distributions import setting
from datadog_checks.cis_kubernetes.distributions.block_yaml import NOT_BLOCK, read_block_yaml
from tests.test_yaml_loading import EDGE_DOCUMENTS, KUBEADM_MANIFEST, TREE_EDGES, UNCONSTRUCTIBLE, documents, outcome

LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

# Documents the block reader must read itself (and read as pyyaml does): the kubeadm manifest, and the block-style
# shapes around its own (indentless and indented sequences, compact mappings, quoting, comments, empty values).
BLOCK_DOCUMENTS = [
    KUBEADM_MANIFEST,
    'a: b\n',
    'a: b\nc:\n  d: e\n  f:\n  - g\n  - h: i\n    j: k\nl: m\n',  # indentless sequence, compact mapping
    'a:\n    - b\n    -   c: d\n        e: f\n',  # an indented sequence; spaces after the dash
    '  a: 1\n  b:\n    c: 2\n',  # a root mapping that does not start at column 0
    'a: 1\nb: -1\nc: +2\nd: 1_000\ne: 0x1F\nf: 017\ng: 0o17\nh: 1:20\ni: 1.5\nj: -.inf\nk: .NaN\nl: 1e3\n',
    'a: true\nb: False\nc: yes\nd: NO\ne: on\nf: Off\ng: y\nh: n\ni: ~\nj: null\nk: Null\nl:\n',
    'a: 2001-12-14\nb: 2001-12-14 21:59:43.10 -5\nc: 2001-12-14t21:59:43.10-05:00\n',
    "a: 'it''s'\nb: \"x # y: z\"\nc: ''\nd: \"\"\ne: 'a \"b\" c'\n",
    'a: b  # a comment\n# a line of comment\n   # indented\n\nc: d#e\nf: g:h\ng: http://x:80/p?q=1#f\n',
    'a: {}\nb: []\nc:\n- {}\n- []\n',
    'a: b c  d\nb: $(POD_IP)\nc: (x)\nd: a,b[c]{d}\ne: -x\nf: --flag=a=b\ng: ./x\nh: /x\ni: ~x\n',
    'a: 1\na: 2\nb:\n  c: 1\nb: 3\n',  # a repeated key: the last value, at the first key's place
    'a:\nb:\n  c:\nd: e\n',  # empty values
    'a:\n- b\n-   c\n- d: e\n  f:\n  - g\nh: i\n',
    'spec:\n  containers:\n  - name: x\n    args: [] # none\n    command:\n    - sh\n',
]

# Documents near the block reader's boundary, which it may or may not read: either way, as pyyaml does.
NEAR_BLOCK = [
    'a: b\n  c\n',  # a plain scalar over two lines
    'a: b\n  c: d\n',
    'a: b\n  - c\n',
    'a:\n  b: 1\n c: 2\n',  # an indentation no mapping has
    'a:\n  - b\n  c: d\n',
    'a:\n- b\nc: d\n- e\n',
    '- a\n- b\n',  # a root sequence
    'a\n',
    'a: b: c\n',
    'a: b:\n',
    'a:b\n',
    'a :b\n',
    'a : b\n',
    '- a: b\n - c\n',
    'a: - b\n',
    'a: -\n',
    'a:\n-\n- b\n',
    'a:\n- - b\n',
    'a: &x b\nc: *x\n',
    'a: !!str 1\n',
    'a: |\n  b\n',
    'a: >\n  b\n',
    'a: "b\\n"\n',
    "a: 'b\n  c'\n",
    'a: "b" c\n',
    "a: 'b'#c\n",
    'a: {b: c}\n',
    'a: [b]\n',
    'a: { }\n',
    '---\na: b\n',
    'a: b\n---\nc: d\n',
    'a: b\n...\n',
    '%YAML 1.1\n---\na: b\n',
    'a: b\r\nc: d\r\n',
    'a:\tb\n',
    '\ta: b\n',
    'a: é\n',
    '\ufeffa: b\n',
    'a: b\x7f\n',
    '<<: {a: 1}\n',
    'a: =\n',
    '=: a\n',
    '1: a\n',
    'true: a\n',
    'null: a\n',
    '~: a\n',
    'on: a\n',
    'x y: a\n',
    '"a": b\n',
    '? a\n: b\n',
    'a: @b\n',
    'a: `b\n',
    'a: %b\n',
    'a: ,b\n',
    'a: ?b\n',
    'a: :b\n',
    'a: #b\n',
    'k' * 1001 + ': v\n',  # a key past libyaml's 1,024 characters: refused there
    'k' * 1030 + ': v\n',
    'a: ' + 'v' * 5000 + '\n',
    'a:\n' + ''.join(f'{"  " * i}k{i}:\n' for i in range(1, 70)) + '  ' * 70 + 'x: y\n',  # deeper than _MAX_DEPTH
    '',
    '# only a comment\n',
    '\n\n',
]


def readings(text: str) -> tuple[str, str]:
    """(the block reader's, pyyaml's): a repr, 'unreadable', or for the block reader 'not block'."""

    block = outcome(lambda: read_block_yaml(text, LOADER))
    return 'not block' if block == repr(NOT_BLOCK) else block, outcome(lambda: yaml.load(text, Loader=LOADER))


def assert_read_alike(text: str) -> bool:
    """Whether the block reader read `text`; where it did, it read what pyyaml reads."""
    block, pyyaml = readings(text)
    if block != 'not block':
        assert block == pyyaml, text
    return block != 'not block'


@pytest.mark.parametrize('text', BLOCK_DOCUMENTS, ids=range(len(BLOCK_DOCUMENTS)))
def test_a_document_in_block_style_is_read_without_pyyaml_as_pyyaml_reads_it(text):
    assert assert_read_alike(text)


@pytest.mark.parametrize(
    'text', NEAR_BLOCK + EDGE_DOCUMENTS + TREE_EDGES, ids=range(len(NEAR_BLOCK + EDGE_DOCUMENTS + TREE_EDGES))
)
def test_a_document_near_the_block_style_is_read_as_pyyaml_reads_it_or_left_to_it(text):
    assert_read_alike(text)


@pytest.mark.parametrize('text', UNCONSTRUCTIBLE[:2] + ['a: 0x_\n', 'a:\n- 2001-02-30 10:00:00\n'])
def test_a_plain_scalar_pyyaml_cannot_construct_makes_both_readings_unreadable(text):
    assert readings(text) == ('unreadable', 'unreadable')


def test_block_documents_are_read_without_libyaml_and_others_with_it(monkeypatch):
    loaders = []
    real_document = setting._document
    monkeypatch.setattr(setting, '_document', lambda loader: loaders.append(type(loader)) or real_document(loader))
    assert setting.load_yaml(KUBEADM_MANIFEST)['kind'] == 'Pod'
    assert loaders == []
    assert setting.load_yaml('a: &x b\nc: *x\n') == {'a': 'b', 'c': 'b'}
    assert loaders == [LOADER]


def test_a_document_nested_past_the_bound_is_left_to_pyyaml():
    """How deep a document may nest is pyyaml's to decide (setting.C_COMPOSER_MAX_DEPTH): the block reader takes 64
    levels, far within it."""
    deep = ''.join(f'{"  " * i}k{i}:\n' for i in range(70)) + '  ' * 70 + 'x: y\n'
    shallow = ''.join(f'{"  " * i}k{i}:\n' for i in range(60)) + '  ' * 60 + 'x: y\n'
    assert read_block_yaml(deep, LOADER) is NOT_BLOCK
    assert repr(read_block_yaml(shallow, LOADER)) == repr(yaml.load(shallow, Loader=LOADER))
    assert setting.load_yaml(deep) == yaml.load(deep, Loader=LOADER)
    # Sequences of one-key mappings (`- k:` below `k:`) open two collections a level
    entries = ''.join(f'{"  " * i}- k{i}:\n' for i in range(40)) + '  ' * 40 + '- x\n'
    assert read_block_yaml('a:\n' + entries, LOADER) is NOT_BLOCK
    entries = ''.join(f'{"  " * i}- k{i}:\n' for i in range(30)) + '  ' * 30 + '- x\n'
    assert repr(read_block_yaml('a:\n' + entries, LOADER)) == repr(yaml.load('a:\n' + entries, Loader=LOADER))


def test_a_loader_with_path_resolvers_is_left_to_pyyaml():
    class WithPathResolver(yaml.SafeLoader):
        pass

    WithPathResolver.add_path_resolver('tag:yaml.org,2002:str', ['a'], yaml.ScalarNode)
    assert read_block_yaml('a: 1\n', WithPathResolver) is NOT_BLOCK
    assert read_block_yaml('a: 1\n', yaml.SafeLoader) == {'a': 1}


# Replacements for one line's scalar, indentation or dash: each a shape on or just past the block reader's boundary.
TRICKY_SCALARS = [
    'v', 'a b', 'a  b', 'a: b', 'a:b', 'x #c', 'x#c', "'it''s'", "'a' b", "'a'#b", '"d"', '"e\\n"', '"a #b"',
    '{}', '[]', '{a: 1}', '[1]', '- x', '-x', '--flag=1', '---', '...', '~', '', '1_000', '0x1F', '0o17', '017',
    '1:20', '2001-12-14', '2001-13-01', '2001-12-14 21:59:43.10 -5', '.inf', '-.5', '+1', '1e3', 'yes', 'No', 'ON',
    'y', '&a x', '*a', '!t x', '!!str 1', '|', '>', 'x:', ':x', '-', '%x', '@x', '`x', '$(X)', '(a)', 'a\\b',
    'http://x:80/p', "'", '"', "a'b", 'a"b', '[a', '{a', 'a,b', 'x ', 'x: ', '=', '<<', '? x', '#', ' #c',
]  # fmt: skip
TRICKY_KEYS = ['a', 'name', 'b.c/d-e', 'true', 'null', '1', 'on', 'x y', '<<', '=', '"q"', "'s'", '~', '-k', 'a#b']


def mutated(text: str, rng: random.Random) -> str:
    """`text` with one line changed: its indentation, its scalar, its key, a dash, or a comment or blank line."""
    lines = text.split('\n')
    at = rng.randrange(len(lines))
    line = lines[at]
    indent = len(line) - len(line.lstrip(' '))
    body = line[indent:]
    change = rng.randrange(6)
    dash = '- ' if body.startswith('- ') else ''
    if change == 0:
        lines[at] = ' ' * max(0, indent + rng.choice([-2, -1, 1, 2])) + body
    elif change == 1 and ': ' in body:
        lines[at] = line[: line.index(': ') + 2] + rng.choice(TRICKY_SCALARS)
    elif change in (1, 2):
        lines[at] = ' ' * indent + dash + rng.choice(TRICKY_SCALARS)
    elif change == 3 and ':' in body:
        lines[at] = ' ' * indent + dash + rng.choice(TRICKY_KEYS) + ':' + line.split(':', 1)[1]
    elif change == 4:
        lines[at] = ' ' * indent + rng.choice(['- ', '-', '- - ', '-  ']) + body.removeprefix('- ')
    else:
        lines.insert(at, rng.choice(['', '#', ' # c', ' ' * indent + '# c', '   ']))
    return '\n'.join(lines)


block_keys = st.text(string.ascii_letters + '_-./', max_size=8)
block_documents = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(string.printable, max_size=12), st.dates()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(block_keys, inner, max_size=4),
    max_leaves=24,
)


@settings(max_examples=400, deadline=None)
@given(block_documents, st.sampled_from([2, 3, 4]), st.randoms(use_true_random=False))
def test_dumped_block_documents_and_their_mutations_are_read_as_pyyaml_reads_them(document, indent, rng):
    text = yaml.safe_dump({'root': document, 'list': [document, {'k': document}]}, indent=indent, sort_keys=False)
    assert_read_alike(text)
    for _ in range(5):
        assert_read_alike(mutated(text, rng))


@settings(max_examples=200, deadline=None)
@given(documents, st.sampled_from([{}, {'default_flow_style': True}, {'default_style': '"'}, {'width': 4}]))
def test_generated_documents_in_any_style_are_read_as_pyyaml_reads_them(document, style):
    assert_read_alike(yaml.safe_dump(document, allow_unicode=True, **style))


def test_the_block_reader_reads_most_dumped_documents_and_declines_most_mutations():
    """Not vacuous: of documents pyyaml dumps in block style, the block reader takes most; of their mutations, it still
    takes some and declines many (measured here: all of them, and about half)."""
    rng = random.Random(1131)
    dumped = mutations = read = read_mutated = 0
    for _ in range(400):
        items = [rng.choice(['x', 1, None, True, 'a b', "it's", '1.5.3']) for _ in range(3)]
        document = {rng.choice(['a', 'b.c', 'd-e']): items, 'f': {'g': rng.choice([{}, [], 'h', {'i': ['j']}])}}
        text = yaml.safe_dump(document, indent=rng.choice([2, 4]), sort_keys=False)
        dumped += 1
        read += assert_read_alike(text)
        for _ in range(5):
            mutations += 1
            read_mutated += assert_read_alike(mutated(text, rng))
    assert read / dumped > 0.9
    assert 0.2 < read_mutated / mutations < 0.8
