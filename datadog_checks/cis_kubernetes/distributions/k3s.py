"""k3s: its own default under data-dir, overridden by kube-apiserver-arg in its configuration or command line."""

from __future__ import annotations

from collections.abc import Sequence

from ..control import CONTROL
from ..files_in_root import list_dir_in_root, read_text_in_root
from ..flags import effective_flags
from ..processes import ApiserverProcess
from .setting import ClientCaSetting, as_list, as_mapping, load_yaml

K3S_DATA_DIR = '/var/lib/rancher/k3s'
K3S_CONFIG = '/etc/rancher/k3s/config.yaml'
K3S_UNITS = ('/etc/systemd/system/k3s.service', '/lib/systemd/system/k3s.service')


def k3s_setting(base: str, process: ApiserverProcess) -> ClientCaSetting:
    """k3s: its own default under data-dir, then kube-apiserver-arg from its configuration and command line."""
    root, cwd = f'{base}/root', f'{base}/cwd'
    args, args_origin = list(process.args), 'the k3s command line'
    if process.args_hidden:  # k3s rewrote its process title: its arguments are those of the service that started it
        args, args_origin = _k3s_unit_arguments(root, cwd)
    config_path = (_k3s_option(args, 'config', 'c') or [K3S_CONFIG])[-1]
    config: dict = {}
    for path in [config_path] + [
        f'{config_path}.d/{name}' for name in list_dir_in_root(root, f'{config_path}.d') if name.endswith('.yaml')
    ]:
        text, _ = read_text_in_root(root, cwd, path)
        document = load_yaml(text) if text else None
        for key, value in as_mapping(document).items():
            if str(key).endswith('+'):  # k3s drop-ins append to a list with `key+:`
                config[key[:-1]] = as_list(config.get(key[:-1])) + as_list(value)
            else:
                config[key] = value
    data_dir = (_k3s_option(args, 'data-dir', 'd') or [config.get('data-dir') or K3S_DATA_DIR])[-1]
    cli_args = _k3s_option(args, 'kube-apiserver-arg')
    user_args = as_list(config.get('kube-apiserver-arg')) + cli_args
    flags = effective_flags(['--' + arg.lstrip('-') for arg in user_args])
    if CONTROL.flag in flags:
        from_cli = CONTROL.flag in effective_flags(['--' + arg.lstrip('-') for arg in cli_args])
        origin = args_origin if from_cli else config_path
        source = 'process' if from_cli and not process.args_hidden else 'config_file'
        return ClientCaSetting(flags[CONTROL.flag], source, 'k3s', origin)
    return ClientCaSetting(f'{data_dir}/server/tls/client-ca.crt', 'distribution_default', 'k3s', 'the k3s default')


def _k3s_option(args: Sequence[str], *names: str) -> list[str]:
    """Every value given to k3s's option `names` (--name=value, --name value, -n value), in order.

    Read token by token, so an option of k3s's own whose arity this check does not know cannot hide one.
    """
    spellings = {('--' if len(name) > 1 else '-') + name for name in names}
    values = []
    for i, token in enumerate(args):
        if token == '--':
            break
        name, has_value, value = token.partition('=')
        if name in spellings:
            if has_value:
                values.append(value)
            elif i + 1 < len(args):
                values.append(args[i + 1])
    return values


def _k3s_unit_arguments(root: str, cwd: str) -> tuple[list[str], str]:
    import shlex

    for unit in K3S_UNITS:
        text, _ = read_text_in_root(root, cwd, unit)
        if text is None:
            continue
        command = _unit_exec_start(text)
        try:
            words = shlex.split(command)
        except ValueError:
            continue
        if 'server' in words:
            return words[words.index('server') + 1 :], unit
    return [], 'no k3s service file'


def _unit_exec_start(unit: str) -> str:
    """The ExecStart= command of a systemd unit, its continuation lines joined."""
    lines = iter(unit.splitlines())
    for line in lines:
        if line.strip().startswith('ExecStart='):
            command = line.strip()[len('ExecStart=') :]
            while command.endswith('\\'):
                command = command[:-1] + ' ' + next(lines, '').strip()
            return command.lstrip('-@+!')
    return ''
