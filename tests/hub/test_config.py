"""The fleet file: the commented example loads; mistakes are refused with the key that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabzone.config import ConfigError, load_settings
from tests.support import ROOT


def test_the_documented_example_loads() -> None:
    settings = load_settings(ROOT / "fabzone.example.toml")
    assert [m.id for m in settings.machines] == ["mk3s-1", "ender-1"]
    assert settings.machines[1].baud == 115200
    assert settings.max_upload_bytes == 100 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (
            '[[machines]]\nid = "a"\nname = "A"\nport = "/dev/x"\nprofile = "prusa-mk4"\n',
            ["machines.0.profile", "prusa-mk4"],
        ),
        (
            '[[machines]]\nid = "a"\nname = "A"\nport = "/dev/x"\nprofile = "prusa-mk3s"\nbaudrate = 1\n',
            ["machines.0.baudrate"],
        ),
        (
            '[[machines]]\nid = "a"\nname = "A"\ndriver = "klipper"\nport = "/x"\nprofile = "prusa-mk3s"\n',
            ["machines.0.driver", "klipper"],
        ),
        ("[hub]\nmax_upload_mb = -1\n", ["hub.max_upload_mb"]),
        ('[[machines]]\nid = "a"\nname = "A"\nport = "/x"\nprofile = "prusa-mk3s"\n' * 2, ["appears twice"]),
        ("[hub\n", ["fabzone.toml"]),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, names: list[str]) -> None:
    path = tmp_path / "fabzone.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    for name in names:
        assert name in str(err.value)


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fabzone.toml"
    path.write_text('[hub]\ndata_dir = "/nowhere"\n')
    monkeypatch.setenv("FABZONE_DATABASE_URL", "postgresql://u@db/fab")
    monkeypatch.setenv("FABZONE_MAX_UPLOAD_MB", "5")
    settings = load_settings(path)
    assert settings.database_url == "postgresql://u@db/fab"
    assert settings.max_upload_bytes == 5 * 1024 * 1024


OCTOPRINT = '[[machines]]\nid = "mk3s-op"\nname = "MK3S"\ndriver = "octoprint"\nprofile = "prusa-mk3s"\n'


def test_octoprint_machine_needs_its_url(tmp_path: Path) -> None:
    """Without `url` the serial `port` (the printer's port on the OctoPrint host) must not become
    OctoPrint's address: the machine is refused, by name, with the missing field."""
    path = tmp_path / "fabzone.toml"
    path.write_text(OCTOPRINT + 'api_key_env = "OCTO_KEY"\nport = "/dev/ttyACM0"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert "'mk3s-op'" in message and "url" in message and "OctoPrint" in message, message
    assert str(path) in message


def test_octoprint_url_is_an_http_address(tmp_path: Path) -> None:
    path = tmp_path / "fabzone.toml"
    path.write_text(OCTOPRINT + 'url = "/dev/ttyACM0"\n')
    with pytest.raises(ConfigError, match=r"'mk3s-op'.*http://"):
        load_settings(path)
    path.write_text(OCTOPRINT + 'url = "https://octopi.local:5000"\nport = "/dev/ttyACM0"\n')
    machine = load_settings(path).machines[0]
    assert machine.connection == "https://octopi.local:5000"
    assert machine.driver_options()["serial_port"] == "/dev/ttyACM0"
