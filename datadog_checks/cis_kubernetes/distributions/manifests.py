"""Static pod manifests: where the kubelet of each distribution finds kube-apiserver's, and the value they set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..control import CONTROL
from ..files_in_root import read_text_in_root
from ..flags import effective_flags
from ..processes import APISERVER_PROGRAM
from .setting import as_list, as_mapping, load_yaml

KUBEADM_MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
RKE2_MANIFEST = '/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml'
# Distributions whose kubelet starts kube-apiserver from a static pod manifest file, and where that file is.
STATIC_POD_MANIFESTS = {
    'kubeadm': KUBEADM_MANIFEST,
    'kind': KUBEADM_MANIFEST,
    'minikube': KUBEADM_MANIFEST,
    'kubespray': KUBEADM_MANIFEST,
    'rke2': RKE2_MANIFEST,
}


@dataclass(frozen=True)
class ManifestSetting:
    """What a static pod manifest sets for kube-apiserver."""

    value: str | None  # its effective --client-ca-file
    comparable: bool = True  # False: its command runs the apiserver in a way this check cannot read (a shell script)


def read_manifest(root: str, path: str) -> str | None:
    """The text of the static pod manifest at `path`, read through `root`; None when there is none. A manifest the
    Agent may not read counts as absent (nothing to compare with)."""
    try:
        text, _ = read_text_in_root(root, root, path)
    except PermissionError:
        return None
    return text


def manifest_setting(text: str) -> ManifestSetting:
    """What a static pod manifest's text sets for kube-apiserver."""
    document = as_mapping(load_yaml(text))
    containers = [c for c in as_mapping(document.get('spec')).get('containers') or [] if isinstance(c, Mapping)]
    container = next((c for c in containers if c.get('name') == 'kube-apiserver'), containers[0] if containers else {})
    arguments = apiserver_arguments(as_list(container.get('command')) + as_list(container.get('args')))
    if arguments is None:
        return ManifestSetting(None, comparable=False)
    return ManifestSetting(effective_flags(arguments).get(CONTROL.flag))


# kube-log-runner, formerly go-runner (kubernetes/kubernetes staging/src/k8s.io/component-base/logs/kube-log-runner/
# kube-log-runner.go at 04791b4906602ffda5ccf9bc4c84d3329f1d7080): Go flag-package options, then the command it runs.
LOG_RUNNERS = frozenset({'go-runner', 'kube-log-runner'})
LOG_RUNNER_VALUE_OPTIONS = frozenset({'log-file'})  # its only option that takes a separate value
SHELLS = frozenset({'sh', 'bash', 'ash', 'dash'})


def apiserver_arguments(argv: Sequence[str]) -> list[str] | None:
    """kube-apiserver's own arguments in a container's command (`command` + `args`), through the wrappers it is run
    with (kube-log-runner, `sh -c "exec kube-apiserver ..."`, hyperkube); None when they cannot be told."""
    if not argv:
        return None
    if argv[0].startswith('-'):  # only `args`: the image's entrypoint is the apiserver
        return list(argv)
    program = argv[0].rsplit('/', 1)[-1]
    if _is_apiserver_program(program):
        return list(argv[1:])
    if program == 'hyperkube' and argv[1:2] in (['apiserver'], [APISERVER_PROGRAM]):
        return list(argv[2:])
    if program in LOG_RUNNERS:
        return apiserver_arguments(_after_go_flags(argv[1:]))
    if program in SHELLS:
        return _shell_apiserver_arguments(argv[1:])
    return None


def _after_go_flags(args: Sequence[str]) -> list[str]:
    """What Go's flag package leaves after the options: from the first non-option, or after `--`."""
    i = 0
    while i < len(args) and args[i].startswith('-') and args[i] != '-':
        if args[i] == '--':
            return list(args[i + 1 :])
        name = args[i].lstrip('-')
        i += 2 if name in LOG_RUNNER_VALUE_OPTIONS else 1
    return list(args[i:])


def _shell_apiserver_arguments(args: Sequence[str]) -> list[str] | None:
    """`sh -c SCRIPT`: the words after the apiserver in the script, up to the end of its command. None when the script
    is not read here or the apiserver's words use shell expansion (variables, command substitution)."""
    import shlex

    options = list(args[: next((i for i, a in enumerate(args) if not a.startswith('-')), len(args))])
    if not any('c' in option[1:] for option in options if not option.startswith('--')) or len(options) == len(args):
        return None
    lexer = shlex.shlex(args[len(options)], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes: the shell would refuse it too
        return None
    for i, word in enumerate(words):
        program = word.rsplit('/', 1)[-1]
        if program in ('hyperkube', *LOG_RUNNERS) or _is_apiserver_program(program):
            command = []
            for following in words[i:]:
                if following and all(character in '();<>|&' for character in following):
                    break  # a control operator ends the apiserver's command
                command.append(following)
            if any('$' in word or '`' in word for word in command):
                return None
            return apiserver_arguments(command)
    return None


def _is_apiserver_program(program: str) -> bool:
    return program == APISERVER_PROGRAM  # exactly: kops's kube-apiserver-healthcheck is not the apiserver
