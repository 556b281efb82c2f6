"""The check end to end when kube-apiserver runs as another user: the file is judged as its credentials reach it.

Stand-in apiservers take real credentials (uid, gid, supplementary groups, capabilities) before execve; the check,
running as root as the Agent does, must judge the file as the apiserver can read it, not as the Agent can.
"""

from __future__ import annotations

import os

import pytest

from datadog_checks.base import AgentCheck
from datadog_checks.cis_kubernetes.access import CAP_DAC_READ_SEARCH, POSIX_ACL_ACCESS_XATTR
from devtools import certs
from tests.conftest import needs_root, needs_separate_root, needs_standins, write
from tests.test_access import ACL_USER, acl_xattr, g_obj, mask, other, u_obj

pytestmark = [needs_standins, needs_root]

SC = 'cis_kubernetes.apiserver.client_ca_file'
APISERVER = '/usr/local/bin/kube-apiserver'
NOBODY = 65534
KUBE_GROUP = 1234
VALID = certs.valid_ca(400)


def verdict(aggregator):
    (sc,) = aggregator.service_checks(SC)
    compliant = [m.value for m in aggregator.metrics('cis_kubernetes.control.compliant')]
    return sc.status, sc.message, compliant


def run(make_check, dd_run_check, apiservers, ca: str, **credentials):
    apiservers([APISERVER, f'--client-ca-file={ca}'], **credentials)
    dd_run_check(make_check())


# Talos (siderolabs/talos, internal/app/machined/pkg/controllers/k8s): the apiserver's static pod runs as
# KubernetesAPIServerRunUser/Group = 65534 (pkg/machinery/constants/constants.go) with every capability dropped but
# NET_BIND_SERVICE (control_plane_static_pod.go), and --client-ca-file=/system/secrets/kubernetes/kube-apiserver/ca.crt,
# a file the secrets controller writes 0400 and chowns to 65534:65534.
TALOS_CA = '/system/secrets/kubernetes/kube-apiserver/ca.crt'
CAP_NET_BIND_SERVICE = 10


@needs_separate_root
def test_talos_layout_passes_when_the_file_is_the_apiservers(make_check, dd_run_check, aggregator, apiservers, workdir):
    root = f'{workdir}/root'
    ca = write(root + TALOS_CA, VALID, mode=0o400)
    os.chown(ca, NOBODY, NOBODY)
    run(make_check, dd_run_check, apiservers, TALOS_CA, root=root, user=NOBODY, capabilities=[CAP_NET_BIND_SERVICE])
    assert verdict(aggregator) == (AgentCheck.OK, '', [1])


@needs_separate_root
def test_talos_layout_fails_when_the_file_is_roots(make_check, dd_run_check, aggregator, apiservers, workdir):
    root = f'{workdir}/root'
    write(root + TALOS_CA, VALID, mode=0o400)  # root:root 0400, say after a restore from a backup
    run(make_check, dd_run_check, apiservers, TALOS_CA, root=root, user=NOBODY, capabilities=[CAP_NET_BIND_SERVICE])
    status, message, compliant = verdict(aggregator)
    assert (status, compliant) == (AgentCheck.CRITICAL, [0])
    assert message.startswith('FAIL: kube-apiserver (pid ')
    assert f'runs as uid 65534, gid 65534 and cannot read {TALOS_CA} (root:root 0400)' in message
    (event,) = aggregator.events
    assert event['alert_type'] == 'error' and 'compliance_status:failed' in event['tags']


def test_root_only_file_fails_for_an_apiserver_running_as_nobody(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/pki/ca.crt', VALID, mode=0o600)
    run(make_check, dd_run_check, apiservers, ca, user=NOBODY)
    status, message, compliant = verdict(aggregator)
    assert (status, compliant) == (AgentCheck.CRITICAL, [0])
    assert f'cannot read {ca} (root:root 0600)' in message


def test_root_only_file_passes_for_an_apiserver_running_as_root(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/pki/ca.crt', VALID, mode=0o600)
    run(make_check, dd_run_check, apiservers, ca)
    assert verdict(aggregator) == (AgentCheck.OK, '', [1])


@pytest.mark.parametrize('groups, status', [([KUBE_GROUP], AgentCheck.OK), ([], AgentCheck.CRITICAL)])
def test_group_readable_file_follows_the_apiservers_supplementary_groups(
    make_check, dd_run_check, aggregator, apiservers, workdir, groups, status
):
    ca = write(f'{workdir}/pki/ca.crt', VALID, mode=0o640)
    os.chown(ca, 0, KUBE_GROUP)
    run(make_check, dd_run_check, apiservers, ca, user=NOBODY, groups=groups)
    assert verdict(aggregator)[0] == status


def test_directory_the_apiserver_cannot_search_fails(make_check, dd_run_check, aggregator, apiservers, workdir):
    ca = write(f'{workdir}/pki/ca.crt', VALID, mode=0o644)
    os.chmod(f'{workdir}/pki', 0o700)
    run(make_check, dd_run_check, apiservers, ca, user=NOBODY)
    status, message, _ = verdict(aggregator)
    assert status == AgentCheck.CRITICAL
    assert f'cannot search the directory {workdir}/pki (root:root 0700)' in message


def test_acl_granting_the_apiservers_user_passes(make_check, dd_run_check, aggregator, apiservers, workdir):
    ca = write(f'{workdir}/pki/ca.crt', VALID, mode=0o640)  # setfacl -m u:65534:r,m::r on a root:root 0600 file
    os.setxattr(ca, POSIX_ACL_ACCESS_XATTR, acl_xattr(u_obj(6), (ACL_USER, 4, NOBODY), g_obj(0), mask(4), other(0)))
    run(make_check, dd_run_check, apiservers, ca, user=NOBODY)
    assert verdict(aggregator) == (AgentCheck.OK, '', [1])


def test_acl_for_another_user_does_not_help(make_check, dd_run_check, aggregator, apiservers, workdir):
    ca = write(f'{workdir}/pki/ca.crt', VALID, mode=0o640)
    os.setxattr(ca, POSIX_ACL_ACCESS_XATTR, acl_xattr(u_obj(6), (ACL_USER, 4, 1000), g_obj(0), mask(4), other(0)))
    run(make_check, dd_run_check, apiservers, ca, user=NOBODY)
    status, message, _ = verdict(aggregator)
    assert status == AgentCheck.CRITICAL and 'ACL user::rw-,user:1000:r--' in message


def test_cap_dac_read_search_lets_a_non_root_apiserver_read(make_check, dd_run_check, aggregator, apiservers, workdir):
    ca = write(f'{workdir}/pki/ca.crt', VALID, mode=0o600)
    os.chmod(f'{workdir}/pki', 0o700)
    run(make_check, dd_run_check, apiservers, ca, user=NOBODY, capabilities=[CAP_DAC_READ_SEARCH])
    assert verdict(aggregator) == (AgentCheck.OK, '', [1])


def test_the_verdict_follows_a_permission_change_at_the_next_run(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/pki/ca.crt', VALID, mode=0o644)
    apiservers([APISERVER, f'--client-ca-file={ca}'], user=NOBODY)
    check = make_check()
    dd_run_check(check)
    assert verdict(aggregator)[0] == AgentCheck.OK
    os.chmod(ca, 0o600)  # the bytes are unchanged: the cached bundle must not hide the change
    aggregator.reset()
    dd_run_check(check)
    assert verdict(aggregator)[0] == AgentCheck.CRITICAL
    os.chmod(ca, 0o644)
    aggregator.reset()
    dd_run_check(check)
    assert verdict(aggregator)[0] == AgentCheck.OK
