"""k3s: its own default under data-dir, overridden by kube-apiserver-arg in its configuration or command line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..control import CONTROL
from ..files_in_root import list_dir_in_root, read_text_in_root
from ..flags import effective_flags
from ..processes import ApiserverProcess, disables_apiserver
from ..procfs import process_environment
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
    # pkg/configfilearg: --config/-c, else $K3S_CONFIG_FILE, else the default
    config_path = (_k3s_option(args, 'config', 'c') or [_k3s_environment(base).get('K3S_CONFIG_FILE') or K3S_CONFIG])[
        -1
    ]
    config = k3s_style_config(root, cwd, config_path)
    if disables_apiserver(['--disable-apiserver=' + v for v in as_list(config.get('disable-apiserver'))] + args):
        return ClientCaSetting(None, 'config_file', 'k3s', config_path, no_apiserver='k3s runs with disable-apiserver')
    data_dir = (_k3s_option(args, 'data-dir', 'd') or [config.get('data-dir') or K3S_DATA_DIR])[-1]
    default = f'{data_dir}/server/tls/client-ca.crt'
    # configfilearg puts the configuration's values before the command line's: a list flag gets them in that order.
    config_args, cli_args = as_list(config.get('kube-apiserver-arg')), _k3s_option(args, 'kube-apiserver-arg')
    value = _k3s_client_ca(default, config_args + cli_args)
    if value != _k3s_client_ca(default, config_args):
        source = 'config_file' if process.args_hidden else 'process'
        return ClientCaSetting(value, source, 'k3s', args_origin)
    if value != default or CONTROL.flag in effective_flags(k3s_apiserver_arguments({}, config_args)):
        return ClientCaSetting(value, 'config_file', 'k3s', config_path)
    return ClientCaSetting(value, 'distribution_default', 'k3s', 'the k3s default')


def k3s_style_config(root: str, cwd: str, config_path: str) -> dict:
    """The configuration file of k3s (or rke2, which reads it with k3s's configfilearg), then its `<file>.d/*.yaml`
    drop-ins in name order: a later key replaces an earlier one, `key+:` appends to a list."""
    config: dict = {}
    for path in [config_path] + [
        f'{config_path}.d/{name}' for name in list_dir_in_root(root, f'{config_path}.d') if name.endswith('.yaml')
    ]:
        text, _ = read_text_in_root(root, cwd, path)
        document = load_yaml(text) if text else None
        for key, value in as_mapping(document).items():
            if str(key).endswith('+'):
                config[key[:-1]] = as_list(config.get(key[:-1])) + as_list(value)
            else:
                config[key] = value
    return config


def _k3s_client_ca(default: str, extra_args: Sequence[str]) -> str | None:
    return effective_flags(k3s_apiserver_arguments({CONTROL.flag: default}, extra_args)).get(CONTROL.flag)


def k3s_apiserver_arguments(defaults: Mapping[str, str], extra_args: Sequence[str]) -> list[str]:
    """The arguments k3s hands kube-apiserver: its defaults combined with kube-apiserver-arg entries as k3s's
    GetArgs does (pkg/daemons/config/types.go, later pkg/util/args.go): `name=value` replaces the default but keeps
    earlier entries for that name, `name+=value` appends after the default, `name-=value` puts the value before it,
    a bare `name` means `name=true`; names are sorted, values of one name kept in order (pflag: the last one wins)."""
    initial = dict(defaults)
    values: dict[str, list[str]] = {}
    for entry in extra_args:
        name, has_value, value = entry.removeprefix('--').partition('=')
        value = value if has_value else 'true'
        cleaned = name.rstrip('-+')
        before = ([initial[cleaned]] if cleaned in initial else []) + values.get(cleaned, [])
        if name.endswith('+'):
            values[cleaned] = [*before, value]
        elif name.endswith('-'):
            values[cleaned] = [value, *before]
        else:
            values[cleaned] = [*values.get(cleaned, []), value]
        initial.pop(cleaned, None)
    for name, value in initial.items():
        values[name] = [value]
    return [f'--{name.removeprefix("--")}={value}' for name in sorted(values) for value in values[name]]


def _k3s_environment(base: str) -> dict[str, str]:
    procfs, _, pid = base.rpartition('/')
    return process_environment(procfs, int(pid)) if pid.isdigit() else {}


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
