"""Reading kube-apiserver's effective flags as pflag with Kubernetes' normalization does."""

from datadog_checks.cis_kubernetes.flags import effective_flags


def client_ca(*args: str) -> str | None:
    return effective_flags(list(args)).get('client-ca-file')


def test_equals_form_sets_the_value():
    assert client_ca('--client-ca-file=/etc/kubernetes/pki/ca.crt') == '/etc/kubernetes/pki/ca.crt'


def test_two_token_form_takes_the_next_argument():
    assert client_ca('--client-ca-file', '/pki/ca.crt', '--v=2') == '/pki/ca.crt'


def test_value_splits_at_the_first_equals_sign():
    assert client_ca('--client-ca-file=/pki/a=b.crt') == '/pki/a=b.crt'


def test_underscores_equal_dashes_in_flag_names():
    assert client_ca('--client_ca_file=/pki/ca.crt') == '/pki/ca.crt'
    assert client_ca('--client-ca_file', '/pki/ca.crt') == '/pki/ca.crt'


def test_the_last_occurrence_wins():
    assert client_ca('--client-ca-file=/a', '--client_ca_file', '/b') == '/b'


def test_empty_value_after_a_set_value_leaves_it_empty():
    assert client_ca('--client-ca-file=/pki/ca.crt', '--client-ca-file=') == ''


def test_empty_next_token_is_an_empty_value():
    assert client_ca('--client-ca-file', '') == ''


def test_double_dash_ends_flag_parsing():
    assert client_ca('--', '--client-ca-file=/pki/ca.crt') is None
    assert client_ca('--client-ca-file=/a', '--', '--client-ca-file=') == '/a'


def test_boolean_flags_never_take_the_next_token():
    assert client_ca('--profiling', '--client-ca-file=/pki/ca.crt') == '/pki/ca.crt'
    assert client_ca('--anonymous-auth', '--client-ca-file', '/pki/ca.crt') == '/pki/ca.crt'
    assert client_ca('--allow_privileged', '--client-ca-file', '/pki/ca.crt') == '/pki/ca.crt'
    assert client_ca('--version', '--client-ca-file', '/pki/ca.crt') == '/pki/ca.crt'


def test_boolean_flag_with_explicit_value():
    flags = effective_flags(['--anonymous-auth=false', '--client-ca-file=/x'])
    assert flags['anonymous-auth'] == 'false'
    assert flags['client-ca-file'] == '/x'


def test_a_valued_flag_takes_the_next_token_even_when_it_looks_like_a_flag():
    assert client_ca('--tls-cert-file', '--client-ca-file=/pki/ca.crt') is None
    assert effective_flags(['--tls-cert-file', '--client-ca-file=/x'])['tls-cert-file'] == '--client-ca-file=/x'


def test_a_valued_flag_may_take_a_double_dash_as_its_value():
    assert client_ca('--tls-cert-file', '--', '--client-ca-file=/pki/ca.crt') == '/pki/ca.crt'


def test_shorthand_v_takes_a_value_inline_or_from_the_next_token():
    assert client_ca('-v', '--client-ca-file=/x') is None
    assert client_ca('-v2', '--client-ca-file=/x') == '/x'
    assert client_ca('-v=2', '--client-ca-file=/x') == '/x'
    assert effective_flags(['-v', '4'])['v'] == '4'


def test_shorthand_h_is_boolean():
    assert client_ca('-h', '--client-ca-file=/x') == '/x'


def test_positional_and_empty_arguments_are_skipped():
    assert client_ca('', '-', 'serve', '--client-ca-file=/x') == '/x'


def test_flag_missing_its_value_at_the_end_is_not_set():
    assert client_ca('--client-ca-file') is None


def test_similar_flag_names_are_other_flags():
    assert client_ca('--requestheader-client-ca-file=/x', '--client-ca-file-extra=/y', '--oidc-ca-file=/z') is None


def test_malformed_long_flags_are_skipped():
    assert client_ca('---client-ca-file=/x', '--=x') is None


def test_non_ascii_values_are_kept():
    assert client_ca('--client-ca-file=/pki/çà/ca.crt') == '/pki/çà/ca.crt'
