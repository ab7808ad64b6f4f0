from collections.abc import Iterator
from pathlib import Path

import pytest

# The host's own test kit, the same one vendors opt into.
pytest_plugins = ["appliance.testing", "appliance.testing_rigs"]


@pytest.fixture(autouse=True)
def _private_config_home(tmp_path_factory: pytest.TempPathFactory,
                         monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own ~/.config: the master key's default home is there, and keys left
    behind by one test (or one run) must never decide what another can read."""
    home = tmp_path_factory.mktemp("config-home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    yield home
